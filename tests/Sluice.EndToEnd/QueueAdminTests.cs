// `sluice queue list|show|shape|hold|release|delete|bounce` against a running server, and a damaged
// spool record moved aside at start and reported by `queue stat`. Remote mail is routed to a
// refused port first (deferred, retried in an hour), so it stays queued until the test says otherwise.
using System.Text;
using System.Text.RegularExpressions;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed partial class QueueAdminTests
{
    private const string Refused = "127.0.0.1:1";

    private static Task<Instance> StartDeferringAsync() => Instance.StartAsync(c =>
    {
        c["Queue"] = new { Count = 1 };
        c["Routes"] = new Dictionary<string, string> { ["*"] = Refused };
        c["Retry"] = new { Schedule = new[] { "1h" }, MaxQueueLifetime = "2h" };
    });

    [Fact]
    public async Task List_show_and_shape_describe_what_waits()
    {
        await using var sluice = await StartDeferringAsync();
        await SendAsync(sluice, "alice@local.test", "bob@local.test", "carol@remote.test");
        await SendAsync(sluice, "alice@local.test", "dave@other.test");
        await sluice.WaitForMaildirAsync("bob");
        await WaitForDeferralsAsync(sluice, 2);

        var list = await VerbAsync(sluice, "queue", "list");
        var lines = list.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Matches(@"^1\.\d+ age \d+s size \d+ from <alice@local\.test> pending 1/2 <carol@remote\.test> next \d{4}-\d\d-\d\dT[\d:]+Z last-error ""451 4\.4\.1 127\.0\.0\.1:1: connect to 127\.0\.0\.1:1 failed.*""$", lines[0]);
        Assert.Matches(@"^1\.\d+ age \d+s size \d+ from <alice@local\.test> pending 1/1 <dave@other\.test> next ", lines[1]);
        Assert.Equal("-- 2 messages, 2 recipients pending", lines[2]);
        var first = lines[0].Split(' ')[0];

        Assert.Equal(2, (await VerbAsync(sluice, "queue", "list", "--destination", "other.test")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal("-- 0 messages, 0 recipients pending\n", await VerbAsync(sluice, "queue", "list", "--older-than", "1h"));

        var show = await VerbAsync(sluice, "queue", "show", first);
        Assert.Contains($"id: {first}\n", show, StringComparison.Ordinal);
        Assert.Contains("sender: <alice@local.test>\n", show, StringComparison.Ordinal);
        Assert.Contains("held: no\n", show, StringComparison.Ordinal);
        Assert.Matches(@"recipient <bob@local\.test>: delivered, 1 try, last reply ""250 2\.0\.0 delivered to maildir bob/new/", show);
        Assert.Matches(@"recipient <carol@remote\.test>: pending, 1 try, next try \S+Z, last reply ""451 4\.4\.1 ", show);
        Assert.Contains("  Subject: for bob@local.test carol@remote.test\n", show, StringComparison.Ordinal);

        var (exit, _, stderr) = await sluice.RunVerbAsync("queue", "show", "1.12345");
        Assert.Equal(1, exit);
        Assert.Equal("queue show: no message 1.12345 is in the queue\n", stderr);

        var shape = (await VerbAsync(sluice, "queue", "shape")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("# pending recipients by recipient domain, age in minutes", shape[0]);
        Assert.Equal(["", "T", "5", "10", "20", "40", "80", "160", "320", "640", "1280", "1280+"], Cells(shape[1]));
        Assert.Equal(["TOTAL", "2", "2", "0", "0", "0", "0", "0", "0", "0", "0", "0"], Cells(shape[2]));
        Assert.Equal(["other.test", "remote.test"], shape[3..].Select(l => Cells(l)[0]).Order());
        Assert.All(shape[3..], l => Assert.Equal(["1", "1"], Cells(l)[1..3]));
        var bySender = (await VerbAsync(sluice, "queue", "shape", "--by-sender", "--buckets", "3")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["", "T", "5", "10", "10+"], Cells(bySender[1]));
        Assert.Equal(["local.test", "2", "2", "0", "0"], Cells(bySender[3]));
    }

    [Fact]
    public async Task A_recipient_not_tried_yet_is_due_now_in_show_list_and_the_JSON_not_at_1970()
    {
        // The sink holds its reply to DATA, so the recipient stays pending with no try recorded while the test looks.
        await using var sluice = await Instance.StartAsync(c => c["Queue"] = new { Count = 1 });
        var reply = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        sluice.Sink.BeforeDataReply = _ => reply.Task;
        try
        {
            await SendAsync(sluice, "alice@local.test", "slow@remote.test");
            await sluice.WaitForLogAsync("to remote slow@remote.test");
            var id = NewMessageId().Match(string.Join('\n', sluice.Process.Log)).Groups[1].Value;

            var show = await VerbAsync(sluice, "queue", "show", id);
            Assert.Contains("recipient <slow@remote.test>: pending, 0 tries, next try now\n", show, StringComparison.Ordinal);
            Assert.DoesNotContain("1970", show, StringComparison.Ordinal);
            Assert.Matches($@"^{Regex.Escape(id)} age \d+s size \d+ from <alice@local\.test> pending 1/1 <slow@remote\.test> next now\n", await VerbAsync(sluice, "queue", "list"));
            using var admin = Sluice.Operate.AdminSocket.Client(sluice.Dir.File("var/admin.sock"));
            var json = await admin.GetStringAsync($"api/v1/queue/messages/{id}");
            Assert.Contains("\"attempts\":0,\"nextTry\":null", json, StringComparison.Ordinal);
            Assert.Contains("\"nextTry\":null,\"held\":false", json, StringComparison.Ordinal);
            Assert.DoesNotContain("1970", json, StringComparison.Ordinal);
        }
        finally
        {
            reply.TrySetResult();
        }
        await sluice.Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(30));
    }

    [GeneratedRegex(@"new msg (\d+\.\d+)")]
    private static partial Regex NewMessageId();

    [Fact]
    public async Task Held_mail_stays_held_across_a_restart_and_is_delivered_once_released()
    {
        await using var sluice = await StartDeferringAsync();
        await SendAsync(sluice, "alice@local.test", "held@remote.test");
        await WaitForDeferralsAsync(sluice, 1);
        var id = (await VerbAsync(sluice, "queue", "list")).Split(' ')[0];
        Assert.Equal("queue hold: 1 messages matched, 1 held\n", await VerbAsync(sluice, "queue", "hold", id));
        await sluice.WaitForLogAsync($"hold msg {id}: held by the operator, 1 recipients pending");

        // Restart with the sink reachable: held mail must not go, other mail to the same place must.
        Assert.Equal(0, await sluice.Process.StopAsync());
        sluice.Config["Routes"] = new Dictionary<string, string> { ["*"] = $"127.0.0.1:{sluice.Sink.Port}" };
        await sluice.WriteConfigAsync();
        await sluice.RestartAsync();
        Assert.Equal("queue flush: 1 messages matched, 1 due now\n", await VerbAsync(sluice, "queue", "flush", "--all"));
        await SendAsync(sluice, "alice@local.test", "free@remote.test");
        await sluice.Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(30));
        await sluice.WaitForLogAsync("end msg");
        Assert.Equal(["free@remote.test"], sluice.Sink.Messages.SelectMany(m => m.Recipients));
        Assert.Matches($@"^{Regex.Escape(id)} .* next held last-error ""451 4\.4\.1 ", (await VerbAsync(sluice, "queue", "list")).Split('\n')[0]);
        Assert.Contains("held: yes", await VerbAsync(sluice, "queue", "show", id), StringComparison.Ordinal);

        Assert.Equal("queue release: 1 messages matched, 1 released\n", await VerbAsync(sluice, "queue", "release", id));
        await sluice.Sink.WaitForCountAsync(2, TimeSpan.FromSeconds(30));
        Assert.Equal(["free@remote.test", "held@remote.test"], sluice.Sink.Messages.SelectMany(m => m.Recipients).Order());
        await sluice.WaitForLogAsync($"release msg {id}: released by the operator");
    }

    [Fact]
    public async Task Delete_removes_mail_for_good_and_bounce_returns_it_to_the_sender()
    {
        await using var sluice = await StartDeferringAsync();
        await SendAsync(sluice, "alice@local.test", "x@gone.test");
        await SendAsync(sluice, "alice@local.test", "y@returned.test", "z@returned.test");
        await WaitForDeferralsAsync(sluice, 2);

        var (exit, _, stderr) = await sluice.RunVerbAsync("queue", "delete");
        Assert.Equal(64, exit);
        Assert.Contains("name messages by id or give a filter", stderr, StringComparison.Ordinal);

        Assert.Equal("queue delete: 1 messages matched, 1 deleted (1 recipients, no bounce sent)\n",
            await VerbAsync(sluice, "queue", "delete", "--destination", "gone.test"));
        await sluice.WaitForLogAsync("pending recipients removed by the operator, no bounce sent");
        Assert.Equal("queue bounce: 1 messages matched, 1 bounced (2 recipients returned to their senders)\n",
            await VerbAsync(sluice, "queue", "bounce", "--sender", "local.test", "--older-than", "0s"));

        var dsn = await sluice.WaitForMaildirAsync("alice");
        Assert.Contains("Subject: Undelivered Mail Returned to Sender", dsn, StringComparison.Ordinal);
        Assert.Contains("<y@returned.test>: 550 5.0.0 returned to the sender by the mail system administrator", dsn, StringComparison.Ordinal);
        Assert.Contains("Final-Recipient: rfc822; z@returned.test", dsn, StringComparison.Ordinal);
        Assert.DoesNotContain("gone.test", dsn, StringComparison.Ordinal);
        await sluice.WaitForLogAsync("bounce msg 1.");
        Assert.Equal("-- 0 messages, 0 recipients pending\n", await VerbAsync(sluice, "queue", "list"));

        // Neither comes back after a restart.
        Assert.Equal(0, await sluice.Process.StopAsync());
        await sluice.RestartAsync();
        await sluice.WaitForLogAsync("queue1: 0 messages, 0 recipients recovered");
    }

    [Fact]
    public async Task A_damaged_spool_record_is_moved_aside_reported_by_stat_and_the_rest_delivered()
    {
        var sluice = await StartDeferringAsync();
        await using var _ = sluice;
        foreach (var rcpt in new[] { "one@remote.test", "two@remote.test", "three@remote.test" })
            await SendAsync(sluice, "alice@local.test", rcpt);
        await WaitForDeferralsAsync(sluice, 3);
        Assert.Equal(0, await sluice.Process.StopAsync());

        var queueDir = sluice.Dir.File("var/queue/queue1");
        var segment = Directory.GetFiles(queueDir, "seg*.log").Single(f => Encoding.Latin1.GetString(File.ReadAllBytes(f)).Contains("for two@remote.test", StringComparison.Ordinal));
        var bytes = await File.ReadAllBytesAsync(segment);
        bytes[Encoding.Latin1.GetString(bytes).IndexOf("for two@remote.test", StringComparison.Ordinal)] ^= 0xFF;
        await File.WriteAllBytesAsync(segment, bytes);

        sluice.Config["Routes"] = new Dictionary<string, string> { ["*"] = $"127.0.0.1:{sluice.Sink.Port}" };
        sluice.Config["Retry"] = new { Schedule = new[] { "1s" }, MaxQueueLifetime = "2h" };
        await sluice.WriteConfigAsync();
        await sluice.RestartAsync();
        await sluice.WaitForLogAsync("damaged bytes at offset");
        await VerbAsync(sluice, "queue", "flush"); // their next try was an hour away
        await sluice.Sink.WaitForCountAsync(2, TimeSpan.FromSeconds(30));
        Assert.Equal(["one@remote.test", "three@remote.test"], sluice.Sink.Messages.SelectMany(m => m.Recipients).Order());

        var (exit, stdout, stderr) = await sluice.RunVerbAsync("queue", "stat");
        Assert.True(exit == 0, stderr);
        var aside = Assert.Single(Directory.GetFiles(Path.Combine(queueDir, "corrupt")));
        Assert.Contains($"queue1: corrupt: {aside} (", stdout, StringComparison.Ordinal);
        Assert.Contains("for two@remote.test"[1..], Encoding.Latin1.GetString(await File.ReadAllBytesAsync(aside)), StringComparison.Ordinal);
    }

    private static async Task<string> VerbAsync(Instance sluice, params string[] args)
    {
        var (exit, stdout, stderr) = await sluice.RunVerbAsync(args);
        Assert.True(exit == 0, $"sluice {string.Join(' ', args)} exited {exit}: {stderr}");
        return stdout;
    }

    private static Task WaitForDeferralsAsync(Instance sluice, int count) =>
        sluice.Process.WaitForLogAsync(_ => sluice.Process.Log.Count(l => l.Contains("deferral: 451 4.4.1 127.0.0.1:1", StringComparison.Ordinal)) >= count,
            TimeSpan.FromSeconds(30));

    /// <summary>One message to all <paramref name="recipients"/> in one transaction, from <paramref name="sender"/>.</summary>
    private static async Task SendAsync(Instance sluice, string sender, params string[] recipients)
    {
        using var client = new SmtpClient { Timeout = 30_000 };
        await client.ConnectAsync("127.0.0.1", sluice.Process.SmtpPort, SecureSocketOptions.None);
        var message = new MimeMessage { Subject = $"for {string.Join(' ', recipients)}", Body = new TextPart("plain") { Text = "hello\n" } };
        message.From.Add(MailboxAddress.Parse(sender));
        message.To.AddRange(recipients.Select(MailboxAddress.Parse));
        await client.SendAsync(message, MailboxAddress.Parse(sender), recipients.Select(MailboxAddress.Parse));
        await client.DisconnectAsync(true);
    }

    private static string[] Cells(string line) => line.Length > 0 && line[0] == ' ' && line.TrimStart().StartsWith("T ", StringComparison.Ordinal)
        ? ["", .. line.Split(' ', StringSplitOptions.RemoveEmptyEntries)]
        : line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
}
