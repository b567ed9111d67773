// `sluice queue stat`: what waits in the queues, per queue and channel (read from the spool, no server
// needed); `sluice queue flush`: ask the running server to retry deferred mail now; the bulk
// administration verbs (list, show, hold, release, delete, bounce, shape) are in QueueAdminVerbs.
using System.CommandLine;
using Sluice.Core.IO;
using Sluice.Operate;

namespace Sluice.Verbs;

internal static class QueueVerb
{
    public static Command Create(Option<string?> config)
    {
        var queue = new Command("queue", "Inspect and administer the queues");
        var stat = new Command("stat", "Messages and pending recipients per queue and channel (qmail-qstat)");
        stat.SetAction(async (parse, ct) =>
        {
            var options = ConfigOption.Load(parse.GetValue(config));
            if (options is null) return ExitCodes.Config;
            try
            {
                Console.Write(await QueueStat.RenderAsync(options, w => Console.Error.WriteLine(w), ct));
                return ExitCodes.Ok;
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"queue stat: {e.Message}");
                return ExitCodes.Unavailable;
            }
        });
        queue.Subcommands.Add(stat);
        var flush = new Command("flush",
            "Ask the running server to retry deferred mail now and end destination suspensions (SIGALRM); with ids or a filter, only those messages");
        QueueAdminVerbs.AddSelection(flush);
        flush.SetAction(async (parse, ct) =>
        {
            if (QueueAdminVerbs.HasSelection(parse)) return await QueueAdminVerbs.Act(parse, config, "flush", ct);
            var options = ConfigOption.Load(parse.GetValue(config));
            if (options is null) return ExitCodes.Config;
            return RunningServer.Signal(options, UnixSignal.Alarm, "queue flush", "to retry deferred mail now");
        });
        queue.Subcommands.Add(flush);
        queue.Subcommands.Add(QueueAdminVerbs.List(config));
        queue.Subcommands.Add(QueueAdminVerbs.Show(config));
        queue.Subcommands.Add(QueueAdminVerbs.Action(config, "hold", "Keep messages from delivery until released (kept across restarts)"));
        queue.Subcommands.Add(QueueAdminVerbs.Action(config, "release", "Let held messages be delivered again"));
        queue.Subcommands.Add(QueueAdminVerbs.Action(config, "delete", "Remove messages from the queue, without a bounce (logged)"));
        queue.Subcommands.Add(QueueAdminVerbs.Action(config, "bounce", "Fail the pending recipients now, with a bounce (DSN) to the sender"));
        queue.Subcommands.Add(QueueAdminVerbs.Shape(config));
        return queue;
    }
}
