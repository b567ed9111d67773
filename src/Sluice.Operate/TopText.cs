// `sluice top --once`: one plain-text snapshot, one line per active queue beginning `queueN`
// (design.md §3), then on a shared queue database one line per node and a `cluster` line, then one
// line per busy destination. Rates are per second between two snapshots.
using System.Globalization;
using System.Text;
using Sluice.Scheduling.Status;

namespace Sluice.Operate;

public static class TopText
{
    public static string Render(ServerStatus now, ServerStatus before)
    {
        var text = new StringBuilder();
        foreach (var q in now.Queues)
        {
            // Only queues that take new mail begin with their name; a draining one is marked in front.
            if (now.Draining.Contains(q.Name)) text.Append("draining ");
            string Rate(Func<QueueStatus, long> f) => now.RateOf(q, before, f);
            text.Append(CultureInfo.InvariantCulture,
                $"{q.Name} load {q.Load:0.00} {string.Join(" ", q.Channels.Select(c => $"{c.Name} {c.InUse}/{c.Concurrency}"))}");
            text.Append(CultureInfo.InvariantCulture,
                $" messages {q.Messages} recipients {q.Recipients} active {q.Active} waiting {q.Waiting}");
            text.Append(CultureInfo.InvariantCulture,
                $" accepted/s {Rate(s => s.Accepted)} delivered/s {Rate(s => s.Delivered)} deferred/s {Rate(s => s.Deferred)} bounced/s {Rate(s => s.Failed)}");
            text.AppendLine();
        }
        if (now.Nodes.Count > 0) RenderCluster(text, now.Nodes);
        foreach (var d in now.Destinations)
        {
            text.Append(CultureInfo.InvariantCulture, $"destination {d.Name} connections {d.InUse} window {d.Window} rate/s {now.RateOf(d, before)} failures {d.Failures}");
            if (d.Suspended) text.Append(" suspended");
            if (d.LastError.Length > 0) text.Append(CultureInfo.InvariantCulture, $" last-error \"{d.LastError}\"");
            text.AppendLine();
        }
        return text.ToString();
    }

    /// <summary>
    /// One line per node on the shared queue database, from its last heartbeat (rates are its own, between
    /// its last two reports), then the cluster's sum over the nodes alive.
    /// </summary>
    private static void RenderCluster(StringBuilder text, IReadOnlyList<Sluice.Queue.ClusterNode> nodes)
    {
        foreach (var n in nodes)
        {
            text.Append(CultureInfo.InvariantCulture, $"node {n.Name} {(n.Alive ? "alive" : "gone")} roles {n.Roles}");
            if (n.Report is { } r) text.Append(Figures(r.Messages, r.Recipients, r.Active, r.AcceptedPerSecond, r.DeliveredPerSecond, r.Deferred, r.Failed));
            text.AppendLine();
        }
        var alive = nodes.Where(n => n.Alive && n.Report is not null).Select(n => n.Report!).ToList();
        text.Append(CultureInfo.InvariantCulture, $"cluster nodes {nodes.Count} alive {nodes.Count(n => n.Alive)}");
        text.Append(Figures(alive.Sum(r => r.Messages), alive.Sum(r => r.Recipients), alive.Sum(r => r.Active),
            alive.Sum(r => r.AcceptedPerSecond), alive.Sum(r => r.DeliveredPerSecond), alive.Sum(r => r.Deferred), alive.Sum(r => r.Failed)));
        text.AppendLine();
    }

    private static string Figures(int messages, int recipients, int active, double acceptedPerSecond, double deliveredPerSecond, long deferred, long failed) =>
        string.Create(CultureInfo.InvariantCulture,
            $" messages {messages} recipients {recipients} active {active} accepted/s {acceptedPerSecond:0.#} delivered/s {deliveredPerSecond:0.#} deferred {deferred} bounced {failed}");
}
