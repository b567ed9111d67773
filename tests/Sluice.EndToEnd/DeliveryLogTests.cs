// The delivery log as operators grep it across restarts: a delivery number names one delivery, whichever
// run of the server made it, and the Received header's id is the queue id the log and `queue show` use.
using System.Text.RegularExpressions;

namespace Sluice.EndToEnd;

public sealed partial class DeliveryLogTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Delivery_numbers_go_on_across_a_clean_restart_and_a_kill_and_never_repeat()
    {
        await using var sluice = await Instance.StartAsync(c => c["Queue"] = new { Count = 2 });
        var runs = new List<long[]>();
        async Task DeliverThreeAsync(string run)
        {
            var before = sluice.Sink.Messages.Count;
            foreach (var n in Enumerable.Range(0, 3)) await TestMail.SendAsync(sluice.Process.SmtpPort, $"{run}{n}@remote.test");
            await sluice.Sink.WaitForCountAsync(before + 3, Wait);
            await sluice.Process.WaitForLogAsync(_ => sluice.Process.Log.Count(l => Success().IsMatch(l)) == 3, Wait);
            var started = sluice.Process.Log.Select(l => Starting().Match(l)).Where(m => m.Success).Select(m => long.Parse(m.Groups[1].Value)).ToArray();
            var succeeded = sluice.Process.Log.Select(l => Success().Match(l)).Where(m => m.Success).Select(m => long.Parse(m.Groups[1].Value));
            Assert.Equal(started.Order(), succeeded.Order());
            runs.Add(started);
        }

        await DeliverThreeAsync("first");
        Assert.Equal(0, await sluice.Process.StopAsync());
        await sluice.RestartAsync();
        await DeliverThreeAsync("second");
        sluice.Process.Kill(); // no clean stop: what was reserved but not used must not come round again
        await sluice.RestartAsync();
        await DeliverThreeAsync("third");

        var all = runs.SelectMany(r => r).ToList();
        Assert.Equal(9, all.Count);
        Assert.Equal(9, all.Distinct().Count());
        // Each run numbers after every number of the runs before it, so the log reads in order; after a clean stop none is skipped.
        for (int i = 1; i < runs.Count; i++) Assert.True(runs[i].Min() > runs[i - 1].Max(), $"run {i + 1} numbered {string.Join(",", runs[i])} after {string.Join(",", runs[i - 1])}");
        Assert.Equal(runs[0].Max() + 1, runs[1].Min());
    }

    [Fact]
    public async Task The_Received_id_is_the_queue_id_the_log_and_queue_show_use_also_for_each_part_of_an_alias_split()
    {
        await using var sluice = await Instance.StartAsync(c =>
        {
            c["Routes"] = new Dictionary<string, string> { ["*"] = "127.0.0.1:1" }; // refused: remote mail stays queued
            c["Retry"] = new { Schedule = new[] { "1h" }, MaxQueueLifetime = "2h" };
            c["Mailboxes"] = new { Aliases = new Dictionary<string, string[]> { ["team@local.test"] = ["alice@local.test"] } };
        });
        await TestMail.SendAsync(sluice.Process.SmtpPort, "stays@remote.test");
        await sluice.WaitForLogAsync("to remote stays@remote.test");
        var queued = MessageOf(sluice, "remote stays@remote.test");
        var (exit, show, stderr) = await sluice.RunVerbAsync("queue", "show", queued);
        Assert.True(exit == 0, stderr);
        Assert.Contains($"  \tby {Instance.Hostname} (Sluice) with ESMTP id {queued}\n", show, StringComparison.Ordinal);

        // One transaction, split in two messages: carol as she came, team's share with its Delivered-To on top
        // (two recipients, so no "for" clause: the id ends the clause before the date).
        await using (var smtp = await SmtpWire.OpenAsync(sluice.Process.SmtpPort))
        {
            Assert.StartsWith("250", await smtp.CommandAsync("EHLO client.test"));
            Assert.StartsWith("250", await smtp.CommandAsync("MAIL FROM:<a@client.test>"));
            Assert.StartsWith("250", await smtp.CommandAsync("RCPT TO:<carol@local.test>"));
            Assert.StartsWith("250", await smtp.CommandAsync("RCPT TO:<team@local.test>"));
            Assert.StartsWith("354", await smtp.CommandAsync("DATA"));
            Assert.StartsWith("250 2.0.0 Ok: queued as ", await smtp.CommandAsync("Subject: split\r\n\r\nhi\r\n."));
        }
        var carol = await sluice.WaitForMaildirAsync("carol");
        var alice = await sluice.WaitForMaildirAsync("alice");
        var (carolId, aliceId) = (MessageOf(sluice, "local carol@local.test"), MessageOf(sluice, "local alice@local.test"));
        Assert.NotEqual(carolId, aliceId);
        Assert.Contains($"\tby {Instance.Hostname} (Sluice) with ESMTP id {carolId};\n", carol, StringComparison.Ordinal);
        Assert.Contains($"\nDelivered-To: team@local.test\nReceived: from client.test ([127.0.0.1])\n\tby {Instance.Hostname} (Sluice) with ESMTP id {aliceId};\n", alice, StringComparison.Ordinal);
    }

    /// <summary>The queue id of the message delivered to "CHANNEL RCPT", from its "starting delivery N: msg ID to CHANNEL RCPT" line.</summary>
    private static string MessageOf(Instance sluice, string channelAndRecipient) =>
        sluice.Process.Log.Select(l => StartingTo().Match(l)).First(m => m.Success && m.Groups[2].Value == channelAndRecipient).Groups[1].Value;

    [GeneratedRegex(@"starting delivery \d+: msg (\S+) to (.+)$")]
    private static partial Regex StartingTo();

    [GeneratedRegex(@"starting delivery (\d+): msg ")]
    private static partial Regex Starting();

    [GeneratedRegex(@"\bdelivery (\d+): success: ")]
    private static partial Regex Success();
}
