// Queue.Dynamic (indimail's qscheduler -d) on a real server: the queue count climbs to Max while a slow
// sink keeps every slot busy, new mail spreads over the new queues, and once the load is gone the count
// returns to Count, with every message delivered once; a restart while a queue retires loses nothing.
using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Sluice.Operate;

namespace Sluice.EndToEnd;

public sealed partial class DynamicQueueTests
{
    private static void Dynamic(Dictionary<string, object> c, int max, string retry)
    {
        c["Queue"] = new { Dynamic = true, Count = 1, Max = max, Load = 0.5, IdleRetire = "1s", ScaleInterval = "200ms" };
        // Two slots per queue and a destination limit above what all queues together use: only the queues' own slots bind.
        c["Channels"] = new object[] { new { Name = "remote", Transport = "smtp", Concurrency = 2, DestinationConcurrency = 50 } };
        c["Retry"] = new { Schedule = new[] { retry }, MaxQueueLifetime = "1h" };
    }

    [Fact]
    public async Task Under_saturation_the_count_climbs_to_max_mail_spreads_and_afterwards_it_returns_to_count()
    {
        await using var sluice = await Instance.StartAsync(c => Dynamic(c, max: 3, retry: "1s"));
        sluice.Sink.BeforeDataReply = _ => Task.Delay(150); // a slow receiver keeps each slot busy

        var sent = await InjectUntilAsync(sluice, queue: 3);

        await sluice.Sink.WaitForCountAsync(sent, TimeSpan.FromSeconds(60));
        await sluice.WaitForLogAsync("scaler: queue3 retired", 60);
        await sluice.WaitForLogAsync("scaler: queue2 retired", 60);
        var subjects = sluice.Sink.Messages.Select(m => SubjectOf(m.Data)).ToList();
        Assert.Equal(sent, subjects.Count);
        Assert.Equal(sent, subjects.Distinct().Count());
        var queues = sluice.Process.Log.Select(l => QueueOf().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value).ToHashSet();
        Assert.Equal(["1", "2", "3"], queues.Order());

        var (exit, stdout, stderr) = await sluice.RunVerbAsync("top", "--once");
        Assert.True(exit == 0, stderr);
        Assert.Equal(["queue1"], stdout.Split('\n').Where(l => l.StartsWith("queue", StringComparison.Ordinal)).Select(l => l.Split(' ')[0]));
        Assert.False(Directory.Exists(sluice.Dir.File("var/queue/queue3")));
    }

    [Fact]
    public async Task A_restart_while_a_queue_retires_loses_nothing_and_the_queue_drains_and_goes()
    {
        await using var sluice = await Instance.StartAsync(c => Dynamic(c, max: 2, retry: "1h"));
        // Every try is deferred for an hour, so the queues keep their mail. The refusal is decided at the end of
        // the data, not after the hold: a session of the killed server still held in the sink is refused too.
        var refusing = true;
        var refused = new ConcurrentDictionary<object, bool>(ReferenceEqualityComparer.Instance);
        sluice.Sink.BeforeDataReply = received =>
        {
            if (!Volatile.Read(ref refusing)) return Task.CompletedTask;
            refused[received] = true;
            return Task.Delay(150); // a slow receiver keeps each slot busy, so the load opens queue2
        };
        sluice.Sink.DataReply = received => refused.ContainsKey(received) ? "451 4.3.0 try later" : "250 2.0.0 queued";

        var sent = await InjectUntilAsync(sluice, queue: 2);
        await sluice.WaitForLogAsync("scaler: queue2 retiring (no load", 60);
        sluice.Process.Kill();
        // What the killed server had sent is read (and refused) before the sink starts accepting.
        await sluice.Sink.Sessions.WaitForAtMostAsync(0, TimeSpan.FromSeconds(30));

        Volatile.Write(ref refusing, false);
        await sluice.RestartAsync();
        await sluice.WaitForLogAsync("queue2: ");
        Assert.Contains(sluice.Process.Log, l => l.Contains(" queue2: ", StringComparison.Ordinal) && l.Contains("draining", StringComparison.Ordinal));
        var (exit, _, stderr) = await sluice.RunVerbAsync("queue", "flush");
        Assert.True(exit == 0, stderr);

        await sluice.Sink.WaitForCountAsync(sent, TimeSpan.FromSeconds(60));
        await sluice.WaitForLogAsync("scaler: queue2 retired", 60);
        Assert.Equal(sent, sluice.Sink.Messages.Select(m => SubjectOf(m.Data)).Distinct().Count());
        Assert.False(Directory.Exists(sluice.Dir.File("var/queue/queue2")));
    }

    [Fact]
    public async Task Setqload_changes_the_count_disables_a_queue_and_refuses_settings_that_cannot_work()
    {
        await using var sluice = await Instance.StartAsync(c => c["Queue"] = new { Count = 2, ScaleInterval = "100ms" });

        var (exit, stdout, stderr) = await sluice.RunVerbAsync("setqload", "--count", "3");
        Assert.True(exit == 0, stderr);
        Assert.Contains("queues fixed count 3 max 16 load 0.70", stdout, StringComparison.Ordinal);
        await sluice.WaitForLogAsync("scaler: queue3 added");

        (exit, stdout, stderr) = await sluice.RunVerbAsync("setqload", "--disable", "1");
        Assert.True(exit == 0, stderr);
        Assert.Contains("draining: queue1", stdout, StringComparison.Ordinal);
        // Three must take mail: another queue opens in queue1's place, and the emptied queue1 goes.
        await sluice.WaitForLogAsync("scaler: queue1 retired");
        await sluice.Process.WaitForLogAsync(_ => sluice.Process.Log.Count(l => l.Contains(" added (2 queues take mail, count is 3)", StringComparison.Ordinal)) == 2,
            TimeSpan.FromSeconds(30));
        await TestMail.SendAsync(sluice.Process.SmtpPort, "after@remote.test");
        await sluice.Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(30));
        using var http = AdminSocket.Client(sluice.Dir.File("var/admin.sock"));
        var metrics = await http.GetStringAsync("/metrics");
        Assert.Contains("sluice_queues{state=\"taking\"} 3", metrics, StringComparison.Ordinal);
        Assert.Contains("sluice_queues{state=\"draining\"} 0", metrics, StringComparison.Ordinal);

        (exit, _, stderr) = await sluice.RunVerbAsync("setqload", "--max", "1");
        Assert.Equal(64, exit);
        Assert.Contains("setqload: max (1) must be at least count (3)", stderr, StringComparison.Ordinal);
        (exit, _, stderr) = await sluice.RunVerbAsync("setqload", "--disable", "9");
        Assert.Equal(64, exit);
        Assert.Contains("queue9 is not open", stderr, StringComparison.Ordinal);
    }

    /// <summary>Sends one message per connection from four clients until one has gone into queueN; returns how many were sent.</summary>
    private static async Task<int> InjectUntilAsync(Instance sluice, int queue)
    {
        var sent = 0;
        var reached = new CancellationTokenSource();
        var watch = sluice.WaitForLogAsync($" qp {queue} ", 60).ContinueWith(_ => reached.Cancel(), TaskScheduler.Default);
        var clients = Enumerable.Range(0, 4).Select(async _ =>
        {
            while (!reached.IsCancellationRequested)
            {
                var n = Interlocked.Increment(ref sent);
                Assert.True(n <= 2000, $"no message reached queue{queue} after {n} sent");
                await TestMail.SendAsync(sluice.Process.SmtpPort, $"m{n}@remote.test");
            }
        });
        await Task.WhenAll(clients);
        await watch;
        return sent;
    }

    private static string SubjectOf(string data) => data.Split("\r\n").First(l => l.StartsWith("Subject: ", StringComparison.Ordinal));

    [GeneratedRegex(@" info msg \S+: .* qp (\d+) ")]
    private static partial Regex QueueOf();
}
