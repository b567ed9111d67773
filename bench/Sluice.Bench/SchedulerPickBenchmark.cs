// The scheduler's pick cost per delivery with 1,000,000 recipients queued, under BenchmarkDotNet.
// The queue is built once (tens of seconds) and each invocation consumes part of it, so the job is
// BenchmarkDotNet's Monitoring strategy (no pilot, no repeated invocations per iteration): one
// invocation = the next Window deliveries out of the million. bench/scheduler.sh measures the same
// path in console mode along with memory.
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Sluice.Core.Configuration;

namespace Sluice.Bench;

[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 2, iterationCount: 5)]
[MemoryDiagnoser]
[MedianColumn]
public class SchedulerPickBenchmark
{
    public const int Window = 20_000;
    private const int Messages = 100_000, Recipients = 10, Domains = 1_000;
    private string _dir = "";
    private SchedulerBench.Rig _rig = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        _dir = Path.Combine(Environment.GetEnvironmentVariable("WORKDIR") ?? "/var/tmp", $"sluice-pick-{Environment.ProcessId}");
        await SchedulerBench.WriteAsync(_dir, Messages, Recipients, Domains);
        _rig = await SchedulerBench.Rig.OpenAsync(_dir, SchedulerBench.RemoteChannel(), gated: true);
    }

    /// <summary>The next <see cref="Window"/> deliveries: pick, throttle, log, body read, outcome record.</summary>
    [Benchmark(OperationsPerInvoke = Window)]
    public async Task Delivery()
    {
        var target = _rig.Store.RecipientCount - Window;
        if (target < 0) throw new InvalidOperationException("the queue ran out; raise Messages");
        _rig.Agent.Open();
        while (_rig.Store.RecipientCount > target) await Task.Delay(1);
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _rig.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
