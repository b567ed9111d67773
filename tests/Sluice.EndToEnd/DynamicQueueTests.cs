// Queue.Dynamic (indimail's qscheduler -d) on a real server: under a sink that holds every transaction
// the remote channel's slots are all busy while the local channel is idle, and the queue count climbs
// to Max (a queue with one channel saturated is fully loaded); a queue that drains while the others stay
// saturated is kept, not retired and opened again; once the sink lets go the count returns to Count,
// with every message delivered once. A restart while a queue retires loses nothing.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Sluice.Operate;
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed partial class DynamicQueueTests
{
    private const int Max = 4, RemoteSlots = 2;
    private static readonly TimeSpan IdleRetire = TimeSpan.FromSeconds(1);

    private static void Dynamic(Dictionary<string, object> c, int max, double load, string retry)
    {
        c["Queue"] = new { Dynamic = true, Count = 1, Max = max, Load = load, IdleRetire = "1s", ScaleInterval = "200ms" };
        // An idle local channel beside the remote one (the seed's two ratios), and a destination limit and slow-start window
        // above what all queues together use: only the queues' own slots bind.
        c["Channels"] = new object[]
        {
            new { Name = "local", Transport = "maildir", Domains = new[] { "localhost", "local.test" }, Concurrency = 2 },
            new { Name = "remote", Transport = "smtp", Concurrency = RemoteSlots, DestinationConcurrency = 50, InitialDestinationConcurrency = 50 },
        };
        c["Retry"] = new { Schedule = new[] { retry }, MaxQueueLifetime = "1h" };
    }

    [Fact]
    public async Task Under_saturation_the_count_climbs_to_max_holds_and_afterwards_returns_to_count_with_nothing_lost()
    {
        await using var sluice = await Instance.StartAsync(c => Dynamic(c, Max, load: 0.7, retry: "1s"));
        // The sink holds each transaction until the queue it came from is let go (queue numbers 1..Max).
        var gates = Enumerable.Range(0, Max + 1).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        var held = new SessionGauge();
        sluice.Sink.BeforeDataReply = async received =>
        {
            var queue = await QueueDeliveringAsync(sluice, received.Recipients[0]);
            held.Enter();
            try { await gates[queue].Task; }
            finally { held.Leave(); }
        };

        // Every remote slot of every queue busy: that takes Max queues, so the count must have climbed to Max.
        var sent = await InjectUntilAsync(sluice, held.WaitForAsync(Max * RemoteSlots, TimeSpan.FromSeconds(90)));
        var top = await TopQueuesAsync(sluice);
        Assert.Equal(Enumerable.Range(1, Max).Select(n => $"queue{n}"), top.Keys.Order());
        Assert.All(top.Values, line => Assert.Contains($"load 1.00 local 0/2 remote {RemoteSlots}/{RemoteSlots} ", line, StringComparison.Ordinal));

        // The issue's case: queue4 drains and gets no more mail while the others stay saturated. It stays open over
        // several IdleRetire periods: without it the average (1.00) would open it again at once.
        gates[Max].SetResult();
        await TopUntilAsync(sluice, t => t.TryGetValue($"queue{Max}", out var line) && line.Contains("load 0.00 ", StringComparison.Ordinal)
            && line.Contains(" messages 0 ", StringComparison.Ordinal));
        var window = Stopwatch.StartNew();
        while (window.Elapsed < 5 * IdleRetire)
        {
            top = await TopQueuesAsync(sluice);
            Assert.Equal(Enumerable.Range(1, Max).Select(n => $"queue{n}"), top.Keys.Order());
            Assert.Contains("load 0.00 ", top[$"queue{Max}"], StringComparison.Ordinal);
            Assert.All(Enumerable.Range(1, Max - 1), n => Assert.Contains("load 1.00 ", top[$"queue{n}"], StringComparison.Ordinal));
        }
        Assert.DoesNotContain(sluice.Process.Log, l => l.Contains(" retiring (", StringComparison.Ordinal) || l.Contains($"scaler: queue{Max + 1}", StringComparison.Ordinal));

        foreach (var gate in gates) gate.TrySetResult();
        await sluice.Sink.WaitForCountAsync(sent, TimeSpan.FromSeconds(90));
        for (var n = Max; n > 1; n--) await sluice.WaitForLogAsync($"scaler: queue{n} retired", 60);
        var subjects = sluice.Sink.Messages.Select(m => SubjectOf(m.Data)).ToList();
        Assert.Equal(sent, subjects.Count);
        Assert.Equal(sent, subjects.Distinct().Count());
        Assert.Equal(["queue1"], (await TopQueuesAsync(sluice)).Keys);
        Assert.All(Enumerable.Range(2, Max - 1), n => Assert.False(Directory.Exists(sluice.Dir.File($"var/queue/queue{n}"))));
    }

    /// <summary>Asks `top --once` until its queue lines satisfy <paramref name="condition"/>: a queue's load is no log event.</summary>
    private static async Task TopUntilAsync(Instance sluice, Func<Dictionary<string, string>, bool> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition(await TopQueuesAsync(sluice)))
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(60), "top --once did not show it within 60 s");
    }

    /// <summary>`top --once`'s queue lines (the queues taking mail), by queue name.</summary>
    private static async Task<Dictionary<string, string>> TopQueuesAsync(Instance sluice)
    {
        var (exit, stdout, stderr) = await sluice.RunVerbAsync("top", "--once");
        Assert.True(exit == 0, stderr);
        return stdout.Split('\n').Where(l => l.StartsWith("queue", StringComparison.Ordinal)).ToDictionary(l => l.Split(' ')[0]);
    }

    /// <summary>The queue whose delivery to <paramref name="recipient"/> is at the sink, from its `starting delivery` line.</summary>
    private static async Task<int> QueueDeliveringAsync(Instance sluice, string recipient)
    {
        bool Starting(string l) => StartingDelivery().Match(l) is { Success: true } m && m.Groups[2].Value == recipient;
        await sluice.Process.WaitForLogAsync(Starting, TimeSpan.FromSeconds(30));
        return int.Parse(StartingDelivery().Match(sluice.Process.Log.Last(Starting)).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task A_restart_while_a_queue_retires_loses_nothing_and_the_queue_drains_and_goes()
    {
        await using var sluice = await Instance.StartAsync(c => Dynamic(c, max: 2, load: 0.5, retry: "1h"));
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

        var sent = await InjectUntilAsync(sluice, sluice.WaitForLogAsync(" qp 2 ", 60));
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
        // While queue1 still delivers the rest at full load, queue2 may retire and be added again (a real load):
        // the end is a "retired" that no "added" follows.
        static bool AboutQueue2(string l) => l.Contains("scaler: queue2 ", StringComparison.Ordinal);
        await sluice.Process.WaitForLogAsync(l => AboutQueue2(l) && l.EndsWith(" retired", StringComparison.Ordinal)
            && sluice.Process.Log.Last(AboutQueue2) == l, TimeSpan.FromSeconds(60));
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

    /// <summary>Sends one message per connection from four clients until <paramref name="reached"/> completes; returns how many were sent.</summary>
    private static async Task<int> InjectUntilAsync(Instance sluice, Task reached)
    {
        var sent = 0;
        var clients = Enumerable.Range(0, 4).Select(async _ =>
        {
            while (!reached.IsCompleted)
            {
                var n = Interlocked.Increment(ref sent);
                Assert.True(n <= 2000, $"still not there after {n} messages");
                await TestMail.SendAsync(sluice.Process.SmtpPort, $"m{n}@remote.test");
            }
        });
        await Task.WhenAll(clients);
        await reached;
        return sent;
    }

    private static string SubjectOf(string data) => data.Split("\r\n").First(l => l.StartsWith("Subject: ", StringComparison.Ordinal));

    [GeneratedRegex(@"starting delivery \d+: msg (\d+)\.\d+ to remote (\S+)$")]
    private static partial Regex StartingDelivery();
}
