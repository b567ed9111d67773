// One descriptor budget for SMTP sessions both ways (the FD_SETSIZE seed: the open-files limit, not the
// configuration, is what bounds concurrency). Received and delivering sessions take from the same pool, so
// outbound may use what inbound does not; each side keeps a floor the other cannot take, so a fan-out cannot
// lock SMTP clients out and a flood of clients cannot stop delivery.
namespace Sluice.Core.IO;

/// <param name="total">Sessions the descriptors allow, inbound and outbound together.</param>
/// <param name="inboundFloor">Kept for new inbound sessions: outbound never takes the last of these while inbound holds fewer.</param>
/// <param name="outboundFloor">Kept for deliveries the same way.</param>
public sealed class SessionBudget(int total, int inboundFloor, int outboundFloor)
{
    /// <summary>No limit to enforce (not Linux, or the limit could not be read).</summary>
    public static SessionBudget Unlimited => new(int.MaxValue, 0, 0);

    private readonly Lock _lock = new();
    /// <summary>Deliveries waiting for a slot, first come first served.</summary>
    private readonly LinkedList<TaskCompletionSource> _waiters = new();
    private int _inbound;
    private int _outbound;

    /// <summary>A budget for a process that only delivers (a delivery worker).</summary>
    public static SessionBudget OutboundOnly(int slots) => new(slots, 0, 0);

    public int Total => total;
    public int InboundFloor => inboundFloor;
    public int OutboundFloor => outboundFloor;

    /// <summary>Most inbound sessions at once: all but the deliveries' floor.</summary>
    public int InboundMax => total - outboundFloor;

    /// <summary>Most outbound connections at once: all but the inbound floor.</summary>
    public int OutboundMax => total - inboundFloor;

    public int Inbound
    {
        get { lock (_lock) return _inbound; }
    }

    public int Outbound
    {
        get { lock (_lock) return _outbound; }
    }

    /// <summary>
    /// Closes one idle pooled outbound connection, if there is one (the SMTP agent sets it). Called when a client is
    /// turned away or a delivery must wait for want of a slot: an idle connection is only kept in case it is reused.
    /// </summary>
    public Action? CloseAnIdleConnection { get; set; }

    /// <summary>A delivery (a connection or a DNS query) waits for a slot: a connection done with its transaction should close rather than idle.</summary>
    public bool OutboundWaiting
    {
        get { lock (_lock) return _waiters.Count > 0; }
    }

    /// <summary>A slot for a received session, or false when what is free belongs to the deliveries' floor.</summary>
    public bool TryTakeInbound()
    {
        lock (_lock)
        {
            if (Free - Math.Max(0, outboundFloor - _outbound) > 0)
            {
                _inbound++;
                return true;
            }
        }
        CloseAnIdleConnection?.Invoke();
        return false;
    }

    public void ReleaseInbound()
    {
        lock (_lock)
        {
            _inbound--;
            WakeOutbound();
        }
    }

    /// <summary>A slot for an outbound connection now, or false (then <see cref="TakeOutboundAsync"/> waits for one).</summary>
    public bool TryTakeOutbound()
    {
        lock (_lock)
        {
            if (_waiters.Count > 0 || !OutboundFits) return false;
            _outbound++;
            return true;
        }
    }

    /// <summary>Waits, in turn, for a slot for an outbound connection: the budget spent is a wait, never a failed delivery.</summary>
    public async Task TakeOutboundAsync(CancellationToken ct)
    {
        TaskCompletionSource waiter;
        LinkedListNode<TaskCompletionSource> node;
        lock (_lock)
        {
            if (_waiters.Count == 0 && OutboundFits)
            {
                _outbound++;
                return;
            }
            waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            node = _waiters.AddLast(waiter);
        }
        CloseAnIdleConnection?.Invoke();
        // Given a slot and cancelled are both decided under the lock, so a cancelled waiter never holds one.
        await using var cancel = ct.Register(() =>
        {
            lock (_lock)
            {
                if (node.List is null) return;
                _waiters.Remove(node);
                waiter.TrySetCanceled(ct);
            }
        });
        await waiter.Task.ConfigureAwait(false);
    }

    public void ReleaseOutbound()
    {
        lock (_lock)
        {
            _outbound--;
            WakeOutbound();
        }
    }

    private int Free => total - _inbound - _outbound;

    private bool OutboundFits => Free - Math.Max(0, inboundFloor - _inbound) > 0;

    /// <summary>Under the lock: a slot freed either way goes to the longest-waiting delivery it fits.</summary>
    private void WakeOutbound()
    {
        while (_waiters.First is { } first && OutboundFits)
        {
            _waiters.RemoveFirst();
            _outbound++;
            first.Value.TrySetResult();
        }
    }

    /// <summary>
    /// The floor each side keeps: 0.5 % of the budget, at least 100 (Postfix's default process limit: all the
    /// inbound sessions its smtpd serves at once as shipped) and never more than a quarter, so the shared part
    /// stays the bulk of it. Small on purpose: the floor is what a fan-out can never use.
    /// </summary>
    public static int FloorFor(int total) => Math.Clamp(total / 200, Math.Min(100, total / 4), total / 4);
}
