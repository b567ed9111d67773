// The outbound side of the sessions' descriptor budget (the seeds' warning about per-process descriptor
// limits): past it a connect would fail with EMFILE, so a delivery waits here for a slot instead, and an
// idle pooled connection is closed to make one.
using Sluice.Core.IO;

namespace Sluice.Delivery.Smtp;

internal sealed class ConnectionBudget(SessionBudget sessions)
{
    private int _waiting;

    /// <summary>A slot for one connection, given back when the returned lease is disposed (once).</summary>
    /// <param name="closeAnIdleConnection">Called when none is free: idle pooled connections hold slots too, so close one rather than wait for its idle timeout.</param>
    public async Task<IDisposable> TakeAsync(Action closeAnIdleConnection, CancellationToken ct)
    {
        if (!sessions.TryTakeOutbound())
        {
            Interlocked.Increment(ref _waiting);
            try
            {
                closeAnIdleConnection();
                await sessions.TakeOutboundAsync(ct).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _waiting);
            }
        }
        return new Lease(sessions);
    }

    /// <summary>A delivery is waiting for a slot: a connection done with its transaction should close rather than idle in the pool.</summary>
    public bool HasWaiters => Volatile.Read(ref _waiting) > 0;

    private sealed class Lease(SessionBudget sessions) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) sessions.ReleaseOutbound();
        }
    }
}
