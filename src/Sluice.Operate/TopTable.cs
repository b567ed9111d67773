// `sluice top`'s live screen (Spectre.Console): the same figures as TopText, as two tables.
using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Sluice.Operate;

public static class TopTable
{
    public static IRenderable Render(ServerStatus now, ServerStatus before)
    {
        var queues = new Table().Title($"sluice top — {now.At:yyyy-MM-dd HH:mm:ss}Z");
        foreach (var column in new[] { "queue", "slots", "load", "messages", "recipients", "active", "accepted/s", "delivered/s", "deferred/s", "bounced/s" })
            queues.AddColumn(column);
        foreach (var q in now.Queues)
        {
            string Rate(Func<Sluice.Scheduling.Status.QueueStatus, long> f) => now.RateOf(q, before, f);
            queues.AddRow(
                Markup.Escape(now.Draining.Contains(q.Name) ? $"{q.Name} (draining)" : q.Name),
                Markup.Escape(string.Join(" ", q.Channels.Select(c => $"{c.Name} {c.InUse}/{c.Concurrency}"))),
                q.Load.ToString("0.00", CultureInfo.InvariantCulture), $"{q.Messages}", $"{q.Recipients}", $"{q.Active}",
                Rate(s => s.Accepted), Rate(s => s.Delivered), Rate(s => s.Deferred), Rate(s => s.Failed));
        }
        var destinations = new Table().Title("busiest destinations");
        foreach (var column in new[] { "destination", "connections", "window", "deliveries/s", "failures", "last error" }) destinations.AddColumn(column);
        foreach (var d in now.Destinations)
            destinations.AddRow(Markup.Escape(d.Name), $"{d.InUse}", $"{d.Window}", now.RateOf(d, before), d.Suspended ? $"{d.Failures} (suspended)" : $"{d.Failures}", Markup.Escape(d.LastError));
        return new Rows(queues, destinations);
    }
}
