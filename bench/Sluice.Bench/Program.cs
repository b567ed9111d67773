// Entry point of the micro-benchmarks: BenchmarkDotNet's switcher (bench/parse.sh passes its
// arguments), or "footprint N" for the managed memory N idle sessions hold.
using BenchmarkDotNet.Running;
using Sluice.Bench;

if (args is ["footprint", ..])
    return await IdleFootprint.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 10_000);
BenchmarkSwitcher.FromAssembly(typeof(SessionRunner).Assembly).Run(args);
return 0;
