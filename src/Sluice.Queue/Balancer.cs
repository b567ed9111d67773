// qmail-multi's choice: each new message goes to the least-loaded queue. Load is the scheduler's
// (its busiest channel's slot usage, the measure the Scaler opens queues by, so a queue just opened
// gets the new mail); ties (the common case when idle) go to the queue with fewer messages, then round robin.
// The set of queues changes at run time (the Scaler adds and retires queues, setqload disables one).
using Sluice.Core.Mail;

namespace Sluice.Queue;

public sealed class Balancer(IEnumerable<MailQueue> queues) : IMessageAcceptor
{
    private int _next;
    private MailQueue[] _queues = [.. queues];

    /// <summary>The queues taking new mail now.</summary>
    public IReadOnlyList<MailQueue> Queues => Volatile.Read(ref _queues);

    public void Add(MailQueue queue) => Swap(q => [.. q, queue]);

    public void Remove(MailQueue queue) => Swap(q => [.. q.Where(x => x != queue)]);

    private void Swap(Func<MailQueue[], MailQueue[]> change)
    {
        MailQueue[] was, next;
        do
        {
            was = Volatile.Read(ref _queues);
            next = change(was);
        } while (Interlocked.CompareExchange(ref _queues, next, was) != was);
    }

    public MailQueue Pick()
    {
        var queues = Volatile.Read(ref _queues);
        if (queues.Length == 0) throw new InvalidOperationException("no queue takes new mail");
        var start = (int)((uint)Interlocked.Increment(ref _next) % (uint)queues.Length);
        MailQueue best = queues[start];
        double bestLoad = best.Load();
        for (int i = 1; i < queues.Length; i++)
        {
            var q = queues[(start + i) % queues.Length];
            var load = q.Load();
            if (load < bestLoad || (load == bestLoad && q.Store.MessageCount < best.Store.MessageCount))
                (best, bestLoad) = (q, load);
        }
        return best;
    }

    /// <summary>Into the least-loaded queue; one that stopped taking mail since it was picked sends the message to another.</summary>
    public async Task<QueuedMessage> AcceptAsync(Envelope envelope, TraceHeader? trace, ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        while (true)
            if (await Pick().AcceptNewAsync(envelope, trace, body, ct).ConfigureAwait(false) is { } message) return message;
    }
}
