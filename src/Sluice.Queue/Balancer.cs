// qmail-multi's choice: each new message goes to the least-loaded queue. Load is the scheduler's
// slot usage; ties (the common case when idle) go to the queue with fewer messages, then round robin.
using Sluice.Core.Mail;

namespace Sluice.Queue;

public sealed class Balancer(IReadOnlyList<MailQueue> queues) : IMessageAcceptor
{
    private int _next;

    public IReadOnlyList<MailQueue> Queues => queues;

    public MailQueue Pick()
    {
        var start = (int)((uint)Interlocked.Increment(ref _next) % (uint)queues.Count);
        MailQueue best = queues[start];
        double bestLoad = best.Load();
        for (int i = 1; i < queues.Count; i++)
        {
            var q = queues[(start + i) % queues.Count];
            var load = q.Load();
            if (load < bestLoad || (load == bestLoad && q.Store.MessageCount < best.Store.MessageCount))
                (best, bestLoad) = (q, load);
        }
        return best;
    }

    public Task<QueuedMessage> AcceptAsync(Envelope envelope, ReadOnlyMemory<byte> body, CancellationToken ct) =>
        Pick().AcceptAsync(envelope, body, ct);
}
