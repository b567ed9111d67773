// bench/scheduler.sh's two steps, in console mode (Stopwatch and GC counters, not BenchmarkDotNet):
// a million queued recipients take tens of seconds to build and every measured delivery consumes
// them, so the state cannot be reset per BenchmarkDotNet invocation; and the memory figure needs
// one process whose heap and RSS hold exactly the loaded queue.
//
//   scheduler-spool DIR MESSAGES RCPTS DOMAINS   writes a spool of MESSAGES × RCPTS recipients, the
//                                                 RCPTS of one message in RCPTS different domains
//   scheduler DIR WINDOWS WINDOW                  opens it, hands it to the scheduler's two tiers
//                                                 (deliveries held at a gate), measures the time to the
//                                                 first delivery and memory, then opens the gate and
//                                                 times WINDOWS × WINDOW deliveries
//
// The delivery agent answers success at once, so a delivery costs what the scheduler, the delivery
// log and the spool (body read, outcome record with group commit) cost. Lines starting "kv " are
// for the script.
using System.Diagnostics;
using System.Globalization;
using Sluice.Core.Configuration;
using Sluice.Core.Logging;
using Sluice.Core.Mail;
using Sluice.Delivery;
using Sluice.Queue;
using Sluice.Queue.Spool;
using Sluice.Scheduling;

namespace Sluice.Bench;

internal static class SchedulerBench
{
    private const string Transport = "bench";
    private static readonly byte[] Body = System.Text.Encoding.ASCII.GetBytes(
        "From: <sender@bench.test>\r\nTo: <list@bench.test>\r\nSubject: scheduler bench\r\n\r\n" + new string('x', 200) + "\r\n");

    private static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

    public static async Task<int> WriteSpoolAsync(string[] args)
    {
        if (args.Length != 4) { Console.Error.WriteLine("usage: scheduler-spool DIR MESSAGES RCPTS DOMAINS"); return 2; }
        var (dir, messages, rcpts, domains) = (args[0], Int(args[1]), Int(args[2]), Int(args[3]));
        var sw = Stopwatch.StartNew();
        await WriteAsync(dir, messages, rcpts, domains);
        Console.WriteLine($"spool: {messages} messages × {rcpts} recipients over {domains} domains written in {sw.Elapsed.TotalSeconds:F1} s");
        Kv("spool_s", sw.Elapsed.TotalSeconds);
        Kv("accepted_per_s", messages / sw.Elapsed.TotalSeconds);
        return 0;
    }

    internal static async Task WriteAsync(string dir, int messages, int rcpts, int domains)
    {
        await using var store = FileQueueStore.Open(1, dir, 64L << 20, TimeProvider.System, Console.Error.WriteLine);
        var next = -1;
        // Many accepts in flight, so the spool's group commit shares each fsync between many messages.
        await Task.WhenAll(Enumerable.Range(0, 512).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < messages)
            {
                var to = new string[rcpts];
                for (int j = 0; j < rcpts; j++) to[j] = $"u{i}.{j}@d{((long)i * rcpts + j) % domains}.bench.test";
                await store.AcceptAsync(new Envelope($"s{i}@sender.bench.test", to), Body, CancellationToken.None);
            }
        })));
    }

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length != 3) { Console.Error.WriteLine("usage: scheduler DIR WINDOWS WINDOW"); return 2; }
        var (dir, windows, window) = (args[0], Int(args[1]), Int(args[2]));
        var channel = RemoteChannel();
        Console.WriteLine($"channel: Concurrency {channel.Concurrency}, DestinationConcurrency {channel.DestinationConcurrency}, BatchRecipients {channel.BatchRecipients}");

        // A small queue through the whole path first, so JIT and first-use costs are in the baseline.
        var warmDir = dir + "-warm";
        await WriteAsync(warmDir, 500, 10, 100);
        await using (var warm = await Rig.OpenAsync(warmDir, channel, gated: false))
            while (warm.Store.RecipientCount > 0) await Task.Delay(5);
        Directory.Delete(warmDir, recursive: true);

        var before = Snapshot();
        var sw = Stopwatch.StartNew();
        var total = Stopwatch.StartNew();
        await using var rig = await Rig.OpenAsync(dir, channel, gated: true, afterReplay: () =>
        {
            Kv("replay_s", sw.Elapsed.TotalSeconds);
            var r = Snapshot();
            Kv("heap_replay", r.Heap - before.Heap);
            sw.Restart();
        });
        while (rig.Agent.Calls == 0) await Task.Delay(1);
        Kv("first_delivery_s", sw.Elapsed.TotalSeconds);
        Kv("restart_to_first_delivery_s", total.Elapsed.TotalSeconds);
        await Task.Delay(2000); // the active tier fills and the first Concurrency jobs reach the gate
        var loaded = Snapshot();
        var queued = rig.Store.RecipientCount;
        Console.WriteLine($"queued: {rig.Store.MessageCount} messages, {queued} recipients; {rig.Agent.Waiting} deliveries waiting at the gate; "
            + $"{rig.Scheduler.ActiveCount} messages active, {rig.Scheduler.WaitingCount} waiting");
        Kv("active", rig.Scheduler.ActiveCount);
        Console.WriteLine($"managed heap: {Mb(before.Heap)} → {Mb(loaded.Heap)} MB; RSS {Mb(before.Rss)} → {Mb(loaded.Rss)} MB");
        Kv("queued", queued);
        Kv("messages", rig.Store.MessageCount);
        Kv("heap_before", before.Heap);
        Kv("heap_after", loaded.Heap);
        Kv("rss_before", before.Rss);
        Kv("rss_after", loaded.Rss);
        Kv("heap_per_rcpt", (loaded.Heap - before.Heap) / (double)queued);
        Kv("rss_per_rcpt", (loaded.Rss - before.Rss) / (double)queued);

        rig.Agent.Open();
        for (int w = 0; w <= windows; w++) // window 0 is a warm-up: the gate's backlog and slow start drain
        {
            var target = rig.Store.RecipientCount - window;
            if (target < 0) { Console.Error.WriteLine("scheduler: queue too small for the windows"); return 1; }
            var calls = rig.Agent.Calls;
            var alloc = GC.GetTotalAllocatedBytes(precise: true);
            var gcs = GC.CollectionCount(0);
            var t = Stopwatch.StartNew();
            while (rig.Store.RecipientCount > target) await Task.Delay(1);
            var s = t.Elapsed.TotalSeconds;
            var done = queued - rig.Store.RecipientCount;
            var bytes = (GC.GetTotalAllocatedBytes(precise: true) - alloc) / (double)window;
            queued = rig.Store.RecipientCount;
            Console.WriteLine($"window {w}{(w == 0 ? " (warm-up)" : "")}: {window} deliveries in {s:F3} s = {window / s:F0}/s, {s / window * 1e6:F1} µs each, "
                + $"{bytes:F0} B allocated each, {GC.CollectionCount(0) - gcs} gen0 GCs, agent calls {rig.Agent.Calls - calls}");
            if (w > 0) Console.WriteLine($"kv window {window / s:F0} {s / window * 1e6:F2} {bytes:F0}");
        }
        return 0;
    }

    /// <summary>The default remote channel (Concurrency 2000, DestinationConcurrency 20) on the instant agent.</summary>
    internal static ChannelOptions RemoteChannel()
    {
        var channel = new SluiceOptions().Channels.First(c => c.Name == ChannelOptions.RemoteChannelName);
        channel.Transport = Transport;
        return channel;
    }

    private static void Kv(string key, double value) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"kv {key} {value:0.###}"));

    private static string Mb(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);

    private static (long Heap, long Rss) Snapshot()
    {
        var heap = GC.GetTotalMemory(forceFullCollection: true);
        var rss = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return (heap, long.Parse(rss.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024);
    }

    /// <summary>One queue with its scheduler and todo stage, built as the server builds them.</summary>
    internal sealed class Rig : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private MailQueue _queue = null!;
        private DeliveryLog _log = null!;
        private DestinationThrottle _throttle = null!;
        private QueueScheduler _scheduler = null!;
        private Task _todo = null!;

        public InstantAgent Agent { get; private set; } = null!;
        public QueueScheduler Scheduler => _scheduler;
        public IQueueStore Store => _queue.Store;

        public static Task<Rig> OpenAsync(string dir, ChannelOptions channel, bool gated, Action? afterReplay = null)
        {
            var rig = new Rig();
            var time = TimeProvider.System;
            rig._queue = new MailQueue(FileQueueStore.Open(1, dir, 64L << 20, time, Console.Error.WriteLine));
            afterReplay?.Invoke();
            rig._log = new DeliveryLog(TextWriter.Null, null, time);
            rig.Agent = new InstantAgent(gated);
            rig._throttle = new DestinationThrottle(time, rig._log.Write);
            rig._scheduler = new QueueScheduler(rig._queue, new ChannelMap([channel]), new Dictionary<string, IDeliveryAgent> { [Transport] = rig.Agent },
                rig._throttle, new RetryPolicy(new RetryOptions()), rig._log, time, "bench.sluice.test");
            // Todo hands the recovered messages to the waiting tier before its first await; the active tier fills from there.
            rig._todo = new Todo(rig._queue, rig._scheduler, rig._log).RunAsync(rig._stop.Token);
            return Task.FromResult(rig);
        }

        public async ValueTask DisposeAsync()
        {
            Agent.Open();
            await _scheduler.DisposeAsync();
            await _stop.CancelAsync();
            try { await _todo; } catch (OperationCanceledException) { }
            await _queue.DisposeAsync();
            _throttle.Dispose();
            await _log.DisposeAsync();
            _stop.Dispose();
        }
    }

    /// <summary>Success for every recipient at once; while gated, deliveries wait for <see cref="Open"/>.</summary>
    internal sealed class InstantAgent(bool gated) : IDeliveryAgent
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private long _calls, _waiting;
        private static readonly RecipientResult Ok = new(DeliveryStatus.Delivered, "250 2.0.0 ok");

        public long Calls => Interlocked.Read(ref _calls);
        public long Waiting => Interlocked.Read(ref _waiting);

        public void Open() => _gate.TrySetResult();

        public async Task<RecipientResult[]> DeliverAsync(DeliveryRequest request, CancellationToken ct)
        {
            Interlocked.Increment(ref _calls);
            if (gated && !_gate.Task.IsCompleted)
            {
                Interlocked.Increment(ref _waiting);
                await _gate.Task.WaitAsync(ct).ConfigureAwait(false);
            }
            var results = new RecipientResult[request.Recipients.Count];
            Array.Fill(results, Ok);
            return results;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
