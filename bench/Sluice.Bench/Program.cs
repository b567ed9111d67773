// Entry point of the micro-benchmarks: BenchmarkDotNet's switcher (bench/parse.sh passes its
// arguments), "footprint N" for the managed memory N idle sessions hold, or the two steps of
// bench/scheduler.sh: "scheduler-spool DIR ..." writes a spool, "scheduler DIR ..." measures on it;
// "latency HOST:PORT ..." is bench/compare's open-loop latency injector.
using BenchmarkDotNet.Running;
using Sluice.Bench;

if (args is ["footprint", ..])
    return await IdleFootprint.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 10_000);
if (args is ["scheduler-spool", ..])
    return await SchedulerBench.WriteSpoolAsync(args[1..]);
if (args is ["scheduler", ..])
    return await SchedulerBench.RunAsync(args[1..]);
if (args is ["latency", ..])
    return await LatencyInjector.RunAsync(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(SessionRunner).Assembly).Run(args);
return 0;
