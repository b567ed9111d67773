// A running server as its operator tools see it: every queue and the busiest destinations, taken
// at one moment. The admin API serves it as JSON; `sluice top` and /metrics render it.
using Sluice.Scheduling.Status;

namespace Sluice.Operate;

/// <param name="Draining">Queue names outside Queue.Start/Count: they deliver what they hold but take no new mail.</param>
public sealed record ServerStatus(DateTimeOffset At, IReadOnlyList<QueueStatus> Queues, IReadOnlyList<string> Draining,
    IReadOnlyList<DestinationStatus> Destinations);
