// The outbound side of the sessions' descriptor budget (the seeds' warning about per-process descriptor
// limits), for a connection or a DNS query: past it a connect would fail with EMFILE, so it waits for a
// slot instead (and an idle pooled connection is closed to make one, SessionBudget.CloseAnIdleConnection).
using Sluice.Core.IO;

namespace Sluice.Delivery.Smtp;

internal sealed class ConnectionBudget(SessionBudget sessions)
{
    /// <summary>A slot for one socket, given back when the returned lease is disposed (once).</summary>
    public async Task<IDisposable> TakeAsync(CancellationToken ct)
    {
        await sessions.TakeOutboundAsync(ct).ConfigureAwait(false);
        return new Lease(sessions);
    }

    /// <summary>A delivery is waiting for a slot: a connection done with its transaction should close rather than idle in the pool.</summary>
    public bool HasWaiters => sessions.OutboundWaiting;

    private sealed class Lease(SessionBudget sessions) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) sessions.ReleaseOutbound();
        }
    }
}
