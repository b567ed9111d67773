// kill -9 twice under load: every message that got a 250 must reach the sink after restart.
// Duplicates are allowed only for deliveries in flight at a kill; a delivery holds its slot until
// its outcome is durable, so per kill there can be no more than the slots configured.
using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using MailKit.Net.Smtp;
using MimeKit;
using Xunit.Abstractions;

namespace Sluice.EndToEnd;

public sealed partial class CrashTests(ITestOutputHelper output)
{
    private const int Messages = 3000, Senders = 8, Queues = 4, RemoteSlotsPerQueue = 20;

    [Fact]
    public async Task Every_acknowledged_message_is_delivered_after_two_SIGKILLs_under_load()
    {
        await using var sluice = await Instance.StartAsync(c => c["Queue"] = new { Count = Queues });
        var acknowledged = new ConcurrentDictionary<int, bool>();
        var next = -1;
        var serverUp = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        serverUp.SetResult(sluice.Process.SmtpPort);
        var portSource = serverUp;
        var killAt = int.MaxValue;
        var killNow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        async Task SendAsync()
        {
            int id = Interlocked.Increment(ref next);
            while (id < Messages)
            {
                var port = await Volatile.Read(ref portSource).Task;
                try
                {
                    using var client = new SmtpClient { Timeout = 10_000 };
                    await client.ConnectAsync("127.0.0.1", port, MailKit.Security.SecureSocketOptions.None);
                    for (; id < Messages; id = Interlocked.Increment(ref next))
                    {
                        await client.SendAsync(Message(id));
                        acknowledged[id] = true;
                        if (acknowledged.Count >= Volatile.Read(ref killAt)) Volatile.Read(ref killNow).TrySetResult();
                    }
                    await client.DisconnectAsync(true);
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or SmtpCommandException or SmtpProtocolException or MailKit.ServiceNotConnectedException or TimeoutException or OperationCanceledException)
                {
                    // The server died under us: this id was not acknowledged; retry it on the next instance.
                    await Task.Yield();
                }
            }
        }

        var senders = Enumerable.Range(0, Senders).Select(_ => Task.Run(SendAsync)).ToArray();
        foreach (var threshold in new[] { Messages / 5, Messages / 2 })
        {
            Volatile.Write(ref killNow, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            Volatile.Write(ref killAt, threshold);
            if (acknowledged.Count < threshold) await killNow.Task.WaitAsync(TimeSpan.FromMinutes(2));
            var restarted = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref portSource, restarted);
            sluice.Process.Kill();
            output.WriteLine($"SIGKILL at {acknowledged.Count} acknowledged, {sluice.Sink.Messages.Count} delivered");
            await sluice.Process.DisposeAsync();
            await sluice.RestartAsync();
            restarted.SetResult(sluice.Process.SmtpPort);
        }
        await Task.WhenAll(senders).WaitAsync(TimeSpan.FromMinutes(3));
        Assert.Equal(Messages, acknowledged.Count);

        var expected = acknowledged.Keys.ToHashSet();
        await WaitForAllAsync(sluice, expected);
        foreach (var odd in sluice.Sink.Messages.Where(m => !TestId().IsMatch(m.Data)).Take(1)) output.WriteLine("without id: " + odd.Data);
        var counts = sluice.Sink.Messages.Select(m => IdOf(m.Data)).GroupBy(i => i).ToDictionary(g => g.Key, g => g.Count());
        var duplicates = counts.Values.Sum(c => c - 1);
        output.WriteLine($"delivered {counts.Count} distinct, {duplicates} duplicates");
        var missing = expected.Where(id => !counts.ContainsKey(id)).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} acknowledged messages lost");
        Assert.InRange(duplicates, 0, 2 * Queues * RemoteSlotsPerQueue);
    }

    private static async Task WaitForAllAsync(Instance sluice, HashSet<int> expected)
    {
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (true)
        {
            // One snapshot for both the check and the wait: counting again after the check would miss a
            // last message that arrived in between, and wait for one more that never comes.
            var snapshot = sluice.Sink.Messages.ToArray();
            var seen = snapshot.Select(m => IdOf(m.Data)).ToHashSet();
            if (expected.IsSubsetOf(seen)) return;
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"{expected.Count(id => !seen.Contains(id))} acknowledged messages never arrived");
            await sluice.Sink.WaitForCountAsync(snapshot.Length + 1, TimeSpan.FromSeconds(30));
        }
    }

    private static MimeMessage Message(int id)
    {
        var m = new MimeMessage();
        m.From.Add(MailboxAddress.Parse("load@client.test"));
        m.To.Add(MailboxAddress.Parse($"user{id % 50}@d{id % 7}.remote.test"));
        m.Subject = $"crash test {id}";
        m.Headers.Add("X-Test-Id", id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        m.Body = new TextPart("plain") { Text = new string('x', 2000) };
        return m;
    }

    private static int IdOf(string data) =>
        TestId().Match(data) is { Success: true } m ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : -1;

    [GeneratedRegex(@"X-Test-Id: (\d+)")]
    private static partial Regex TestId();
}
