// `sluice queue stat`: what waits in the queues, per queue and channel.
using System.CommandLine;
using Sluice.Operate;

namespace Sluice.Verbs;

internal static class QueueVerb
{
    public static Command Create(Option<string?> config)
    {
        var queue = new Command("queue", "Inspect the queues");
        var stat = new Command("stat", "Messages and pending recipients per queue and channel (qmail-qstat)");
        stat.SetAction(parse =>
        {
            var options = ConfigOption.Load(parse.GetValue(config));
            if (options is null) return ExitCodes.Config;
            Console.Write(QueueStat.Render(options, w => Console.Error.WriteLine(w)));
            return ExitCodes.Ok;
        });
        queue.Subcommands.Add(stat);
        return queue;
    }
}
