// One queue as `sluice top` and /metrics see it.
using Sluice.Core.Mail;
using Sluice.Queue;
using Sluice.Scheduling.Status;

namespace Sluice.Scheduling;

public sealed partial class QueueScheduler
{
    /// <summary>Nothing held, nothing running: a retiring queue may be closed (its store holds no live message then too).</summary>
    public bool IsIdle
    {
        get
        {
            lock (_gate) return _running.Count == 0 && _active == 0 && _queue.Store.MessageCount == 0;
        }
    }

    public QueueStatus Status()
    {
        IReadOnlyList<ChannelUsage> channels;
        int active, waiting;
        lock (_gate)
        {
            channels = [.. _channels.Select(c => new ChannelUsage(c.Options.Name, c.InUse, c.Options.Concurrency,
                Interlocked.Read(ref c.Outcomes[(int)DeliveryStatus.Delivered]), Interlocked.Read(ref c.Outcomes[(int)DeliveryStatus.Deferred]),
                Interlocked.Read(ref c.Outcomes[(int)DeliveryStatus.Failed])))];
            active = _active;
            waiting = _waiting.Count + _parked.Values.Sum(q => q.Count);
        }
        return new QueueStatus(_queue.Name, Load, _queue.Store.MessageCount, _queue.Store.RecipientCount, active, waiting, _queue.Accepted,
            Interlocked.Read(ref _outcomes[(int)DeliveryStatus.Delivered]), Interlocked.Read(ref _outcomes[(int)DeliveryStatus.Deferred]),
            Interlocked.Read(ref _outcomes[(int)DeliveryStatus.Failed]), channels);
    }
}
