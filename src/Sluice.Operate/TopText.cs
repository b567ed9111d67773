// `sluice top --once`: one plain-text snapshot, one line per active queue beginning `queueN`
// (design.md §3), then one line per busy destination. Rates are per second between two snapshots.
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
        foreach (var d in now.Destinations)
        {
            text.Append(CultureInfo.InvariantCulture, $"destination {d.Name} connections {d.InUse} window {d.Window} rate/s {now.RateOf(d, before)} failures {d.Failures}");
            if (d.Suspended) text.Append(" suspended");
            if (d.LastError.Length > 0) text.Append(CultureInfo.InvariantCulture, $" last-error \"{d.LastError}\"");
            text.AppendLine();
        }
        return text.ToString();
    }
}
