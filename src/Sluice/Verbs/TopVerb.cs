// `sluice top`: the running server's queues and busiest destinations, refreshed every second
// (Spectre.Console); `--once` prints one plain-text snapshot (TopText) and exits.
using System.CommandLine;
using Spectre.Console;
using Sluice.Operate;

namespace Sluice.Verbs;

internal static class TopVerb
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    public static Command Create(Option<string?> config)
    {
        var once = new Option<bool>("--once") { Description = "Print one snapshot as plain text and exit" };
        var top = new Command("top", "Live view of the queues (slots, load, queued, rates) and the busiest destinations") { once };
        top.SetAction(async (parse, ct) =>
        {
            var options = ConfigOption.Load(parse.GetValue(config));
            if (options is null) return ExitCodes.Config;
            using var client = new AdminClient(options);
            var (before, error) = await client.StatusAsync(ct);
            if (before is null)
            {
                Console.Error.WriteLine($"top: {error}");
                return ExitCodes.Unavailable;
            }
            if (parse.GetValue(once))
            {
                // Rates need two snapshots: the second a second after the first.
                await Task.Delay(Interval, ct);
                var (now, _) = await client.StatusAsync(ct);
                Console.Write(TopText.Render(now ?? before, before));
                return ExitCodes.Ok;
            }
            await AnsiConsole.Live(new Text("")).StartAsync(async live =>
            {
                while (!ct.IsCancellationRequested)
                {
                    await Task.Delay(Interval, ct);
                    var (now, why) = await client.StatusAsync(ct);
                    if (now is null)
                    {
                        live.UpdateTarget(new Text($"top: {why}"));
                        continue;
                    }
                    live.UpdateTarget(TopTable.Render(now, before));
                    before = now;
                }
            });
            return ExitCodes.Ok;
        });
        return top;
    }
}
