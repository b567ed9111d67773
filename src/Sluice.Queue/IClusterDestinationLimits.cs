// DestinationConcurrency and DestinationRatePerMinute held across every node that shares one queue
// database, so N nodes do not open N times the limit to a receiver (qmail-big-concurrency's real
// problem, in a farm). The file spool has none: one node's own throttle is the whole truth.
namespace Sluice.Queue;

public interface IClusterDestinationLimits
{
    /// <summary>Takes one of the destination's <paramref name="limit"/> connection slots for this node; false when other nodes hold them all.</summary>
    Task<bool> TryTakeSlotAsync(string destination, int limit, CancellationToken ct);

    /// <summary>Gives back one slot this node holds for the destination.</summary>
    Task GiveBackSlotAsync(string destination, CancellationToken ct);

    /// <summary>
    /// Takes one turn of the destination's cluster-wide pace (turns <paramref name="interval"/> apart, up to <paramref name="burst"/>
    /// at once; the caller's pace decides both): zero when taken, else how long until the next turn.
    /// </summary>
    Task<TimeSpan> TryTakeTurnAsync(string destination, TimeSpan interval, int burst, CancellationToken ct);
}
