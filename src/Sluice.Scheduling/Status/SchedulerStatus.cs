// What a running queue and the destination throttle report to the operator's tools (`sluice top`,
// /metrics): plain values, taken under each component's own lock, totals since start.
namespace Sluice.Scheduling.Status;

/// <param name="Delivered">Recipients delivered through this channel since start; likewise <paramref name="Deferred"/> and <paramref name="Failed"/>.</param>
public sealed record ChannelUsage(string Name, int InUse, int Concurrency, long Delivered = 0, long Deferred = 0, long Failed = 0);

public sealed record QueueStatus(
    string Name, double Load, int Messages, int Recipients, int Active, int Waiting,
    long Accepted, long Delivered, long Deferred, long Failed, IReadOnlyList<ChannelUsage> Channels);

/// <param name="Window">Connections allowed now by slow start and back-off (the channel's limit caps it).</param>
/// <param name="Failures">Destination failures since its last success.</param>
/// <param name="Finished">Deliveries ended there since it was last idle and forgotten: `top` takes its rate from two snapshots.</param>
public sealed record DestinationStatus(string Name, int InUse, int Window, int Failures, bool Suspended, string LastError, long Finished = 0);
