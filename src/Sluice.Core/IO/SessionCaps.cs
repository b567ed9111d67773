// How many SMTP sessions each way the open-files limit leaves room for, and the start-up line that
// says so. Every session, received or delivering (idle pooled connections too), holds one socket.
using Sluice.Core.Configuration;

namespace Sluice.Core.IO;

/// <param name="Inbound">Most simultaneous received sessions: Smtp.MaxConnections, or less when the limit is lower.</param>
/// <param name="Outbound">Most outbound connections open at once: past it deliveries wait for a descriptor instead of failing with EMFILE.</param>
public sealed record SessionCaps(int Inbound, int Outbound)
{
    public static readonly SessionCaps None = new(int.MaxValue, int.MaxValue);

    /// <summary>Descriptors a delivery worker has open before its first connection (runtime, epoll, its socket to the server).</summary>
    private const int FreshProcessDescriptors = 30;

    /// <summary>The outbound connections a delivery worker's open-files limit leaves room for: all its sessions but DNS's.</summary>
    public static int WorkerOutbound(OpenFileLimit.Limits? limits, int openNow, int dnsSockets) =>
        limits is { Soft: > 0 } l ? (int)Math.Clamp(l.SessionEstimate(openNow) - dnsSockets, 1, int.MaxValue) : int.MaxValue;

    /// <summary>The caps for <paramref name="limits"/> with <paramref name="openNow"/> descriptors in use, and the line for the log.</summary>
    /// <param name="dnsSockets">Sockets DNS lookups may hold at once, kept out of the outbound budget.</param>
    public static (SessionCaps Caps, string Line) Plan(OpenFileLimit.Limits limits, int openNow, SluiceOptions options, int dnsSockets)
    {
        var sessions = limits.SessionEstimate(openNow);
        var cap = (int)Math.Max(1, Math.Min(sessions, int.MaxValue));
        var line = $"limits: open files {OpenFileLimit.Limits.Format(limits.Soft)} (hard {OpenFileLimit.Limits.Format(limits.Hard)}); "
            + $"at most ~{sessions} simultaneous SMTP sessions, inbound and outbound together";
        if (limits.Error is not null)
            line += $"; cannot raise the soft limit to the hard one ({limits.Error}): the open-files limit caps sessions";
        var inbound = int.MaxValue;
        if (options.Smtp.MaxConnections > sessions)
        {
            line += $"; Smtp.MaxConnections ({options.Smtp.MaxConnections}) is above that, so inbound sessions are capped at {cap}";
            inbound = cap;
        }
        // Channels[].Concurrency is per queue: every queue's scheduler may deliver that many at once.
        var queues = options.Queue.Dynamic ? options.Queue.Max : options.Queue.Count;
        var outboundWanted = options.Channels.Where(c => c.Transport == ChannelOptions.SmtpTransport).Sum(c => (long)c.Concurrency) * queues;
        if (options.Delivery.Workers > 0)
        {
            // A fresh worker process holds a few dozen descriptors of its own before its first connection.
            var each = WorkerOutbound(limits, FreshProcessDescriptors, dnsSockets);
            line += $"; remote delivery runs in {options.Delivery.Workers} worker processes (Delivery.Workers), "
                + $"each with its own open-files limit: at most ~{each} outbound connections each, ~{(long)each * options.Delivery.Workers} in all";
            return (new SessionCaps(inbound, 0), line);
        }
        // Always capped, since a reload may raise Concurrency: what is left after DNS and up to half for inbound sessions.
        var outbound = (int)Math.Max(1, sessions - dnsSockets - Math.Min(options.Smtp.MaxConnections, sessions / 2));
        line += $"; outbound connections at most {outbound}";
        if (outboundWanted > outbound)
        {
            line += $"; remote delivery is configured for {outboundWanted} simultaneous sessions (smtp Channels[].Concurrency × {queues} queues), "
                + $"so the open-files limit caps outbound connections at {outbound}: deliveries past that wait for one to close";
        }
        else if (Math.Min(options.Smtp.MaxConnections, sessions) + outboundWanted > sessions)
        {
            line += $"; Smtp.MaxConnections ({options.Smtp.MaxConnections}) and remote delivery's {outboundWanted} sessions together exceed it: "
                + "at full load both ways, connections past it fail (inbound refused, outbound deferred)";
        }
        return (new SessionCaps(inbound, outbound), line);
    }
}
