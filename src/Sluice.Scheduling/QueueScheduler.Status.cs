// One queue as `sluice top` and /metrics see it.
using Sluice.Core.Mail;
using Sluice.Scheduling.Status;

namespace Sluice.Scheduling;

public sealed partial class QueueScheduler
{
    public QueueStatus Status()
    {
        IReadOnlyList<ChannelUsage> channels;
        int active, waiting;
        lock (_gate)
        {
            channels = [.. _channels.Select(c => new ChannelUsage(c.Options.Name, c.InUse, c.Options.Concurrency))];
            active = _active;
            waiting = _waiting.Count + _parked.Values.Sum(q => q.Count);
        }
        return new QueueStatus(_queue.Name, Load, _queue.Store.MessageCount, _queue.Store.RecipientCount, active, waiting, _queue.Accepted,
            Interlocked.Read(ref _outcomes[(int)DeliveryStatus.Delivered]), Interlocked.Read(ref _outcomes[(int)DeliveryStatus.Deferred]),
            Interlocked.Read(ref _outcomes[(int)DeliveryStatus.Failed]), channels);
    }
}
