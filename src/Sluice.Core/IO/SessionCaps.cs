// How the open-files limit is shared by SMTP sessions both ways, and the start-up line that says so.
// Every session, received or delivering (idle pooled connections too), holds one socket.
using Sluice.Core.Configuration;

namespace Sluice.Core.IO;

public static class SessionCaps
{
    /// <summary>Descriptors a delivery worker has open before its first connection (runtime, epoll, its socket to the server).</summary>
    private const int FreshProcessDescriptors = 30;

    /// <summary>The outbound sockets (connections and DNS queries) a delivery worker's open-files limit leaves room for.</summary>
    public static int WorkerOutbound(OpenFileLimit.Limits? limits, int openNow) =>
        limits is { Soft: > 0 } l ? (int)Math.Clamp(l.SessionEstimate(openNow), 1, int.MaxValue) : int.MaxValue;

    /// <summary>The session budget for <paramref name="limits"/> with <paramref name="openNow"/> descriptors in use, and the line for the log.</summary>
    /// <remarks>
    /// One budget shared both ways rather than a fixed split: an MTA's load is rarely both at once (a fan-out
    /// while few clients connect, a flood of clients while the queue is short), and a fixed half for inbound
    /// sessions that are not there held a 24,000-session fan-out to ~10,000 under a 20,000 limit. Past one
    /// process's limit, Delivery.Workers gives each worker a limit of its own.
    /// </remarks>
    public static (SessionBudget Budget, string Line) Plan(OpenFileLimit.Limits limits, int openNow, SluiceOptions options)
    {
        var sessions = (int)Math.Min(limits.SessionEstimate(openNow), int.MaxValue);
        var line = $"limits: open files {OpenFileLimit.Limits.Format(limits.Soft)} (hard {OpenFileLimit.Limits.Format(limits.Hard)}); "
            + $"at most ~{sessions} simultaneous SMTP sessions, inbound and outbound together";
        if (limits.Error is not null)
            line += $"; cannot raise the soft limit to the hard one ({limits.Error}): the open-files limit caps sessions";
        // Channels[].Concurrency is per queue: every queue's scheduler may deliver that many at once.
        var queues = options.Queue.Dynamic ? options.Queue.Max : options.Queue.Count;
        var outboundWanted = options.Channels.Where(c => c.Transport == ChannelOptions.SmtpTransport).Sum(c => (long)c.Concurrency) * queues;
        var delivers = NodeRoles.Parse(options.Queue.Roles).HasFlag(NodeRole.Deliver);
        // A Maildir delivery holds its message file open: one descriptor per local delivery at once.
        var maildir = delivers ? options.Channels.Where(c => c.Transport == ChannelOptions.MaildirTransport).Sum(c => c.Concurrency) * queues : 0;
        var shared = Math.Max(1, sessions - maildir);
        SessionBudget budget;
        if (options.Delivery.Workers > 0 || !delivers)
        {
            // No outbound connection in this process: every session is a received one.
            budget = new SessionBudget(shared, 0, 0);
            if (delivers)
            {
                // A fresh worker process holds a few dozen descriptors of its own before its first connection.
                var each = WorkerOutbound(limits, FreshProcessDescriptors);
                line += $"; remote delivery runs in {options.Delivery.Workers} worker processes (Delivery.Workers), "
                    + $"each with its own open-files limit: at most ~{each} outbound connections each, ~{(long)each * options.Delivery.Workers} in all";
            }
        }
        else
        {
            // DNS queries take outbound slots as connections do (a fan-out's lookups come before its connections).
            budget = new SessionBudget(shared, Math.Min(SessionBudget.FloorFor(shared), options.Smtp.MaxConnections), SessionBudget.FloorFor(shared));
            line += $"; shared: outbound connections and DNS queries up to {budget.OutboundMax} while inbound sessions leave them room, "
                + $"{budget.InboundFloor} kept for new inbound sessions and {budget.OutboundFloor} for delivery";
            if (outboundWanted > budget.OutboundMax)
            {
                var perWorker = WorkerOutbound(limits, FreshProcessDescriptors);
                var workers = (outboundWanted + perWorker - 1) / perWorker;
                line += $"; remote delivery is configured for {outboundWanted} simultaneous sessions (smtp Channels[].Concurrency × {queues} queues), "
                    + $"more than this process's open files allow: deliveries past {budget.OutboundMax} wait for a connection to close "
                    + $"(Delivery.Workers {Math.Max(2, workers)} would give each worker process a limit of its own)";
            }
        }
        if (options.Smtp.MaxConnections > budget.InboundMax)
            line += $"; Smtp.MaxConnections ({options.Smtp.MaxConnections}) is above what the open files allow, so inbound sessions are capped at {budget.InboundMax}";
        return (budget, line);
    }
}
