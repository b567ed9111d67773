// A running server as its operator tools see it: every queue and the busiest destinations, taken
// at one moment. The admin API serves it as JSON; `sluice top` and /metrics render it.
using Sluice.Scheduling.Scaling;
using Sluice.Scheduling.Status;

namespace Sluice.Operate;

/// <param name="Draining">Queues that deliver what they hold but take no new mail (retiring, disabled, or beyond Queue.Count at start).</param>
/// <param name="Scaling">The Scaler's settings now, as setqload left them.</param>
public sealed record ServerStatus(DateTimeOffset At, IReadOnlyList<QueueStatus> Queues, IReadOnlyList<string> Draining,
    IReadOnlyList<DestinationStatus> Destinations, QueueSettings Scaling)
{
    /// <summary>Every node on the shared queue database (this one included), as their last heartbeats said; empty for the file spool.</summary>
    public IReadOnlyList<Sluice.Queue.ClusterNode> Nodes { get; init; } = [];

    /// <summary>How fast one of a queue's totals grew per second since <paramref name="before"/>, as `top` shows it.</summary>
    public string RateOf(QueueStatus queue, ServerStatus before, Func<QueueStatus, long> total) =>
        Rate(total(queue) - total(before.Queues.FirstOrDefault(b => b.Name == queue.Name) ?? queue), before);

    /// <summary>Deliveries per second that ended at a destination; one forgotten in between (its count restarted) counts from zero.</summary>
    public string RateOf(DestinationStatus destination, ServerStatus before)
    {
        var was = before.Destinations.FirstOrDefault(b => b.Name == destination.Name)?.Finished ?? 0;
        return Rate(destination.Finished >= was ? destination.Finished - was : destination.Finished, before);
    }

    private string Rate(long grown, ServerStatus before) =>
        (grown / Math.Max((At - before.At).TotalSeconds, 0.001)).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture);
}
