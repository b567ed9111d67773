// `sluice queue stat`: what waits in the queues, per queue and channel; `sluice queue flush`: ask the
// running server to retry deferred mail now.
using System.CommandLine;
using Sluice.Core.IO;
using Sluice.Operate;

namespace Sluice.Verbs;

internal static class QueueVerb
{
    public static Command Create(Option<string?> config)
    {
        var queue = new Command("queue", "Inspect the queues, or have deferred mail retried now");
        var stat = new Command("stat", "Messages and pending recipients per queue and channel (qmail-qstat)");
        stat.SetAction(parse =>
        {
            var options = ConfigOption.Load(parse.GetValue(config));
            if (options is null) return ExitCodes.Config;
            Console.Write(QueueStat.Render(options, w => Console.Error.WriteLine(w)));
            return ExitCodes.Ok;
        });
        queue.Subcommands.Add(stat);
        var flush = new Command("flush", "Ask the running server to retry deferred mail now and end destination suspensions (SIGALRM)");
        flush.SetAction(parse =>
        {
            var options = ConfigOption.Load(parse.GetValue(config));
            if (options is null) return ExitCodes.Config;
            return RunningServer.Signal(options, UnixSignal.Alarm, "queue flush", "to retry deferred mail now");
        });
        queue.Subcommands.Add(flush);
        return queue;
    }
}
