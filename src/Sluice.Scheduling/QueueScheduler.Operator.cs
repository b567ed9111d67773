// What the operator asks of one queue (`sluice queue hold|release|delete|bounce|flush`), one message
// at a time. Each change is durable in the spool before it takes effect and is logged. Work already
// handed out is not chased through the tiers: a job of a message held, deleted or bounced since it was
// made is dropped when its turn comes (WithoutWithdrawn), and a held message is set aside when it
// would next be worked on. A delivery already in progress finishes.
using Sluice.Queue;
using Sluice.Scheduling.Bounces;

namespace Sluice.Scheduling;

public sealed partial class QueueScheduler
{
    /// <summary>What `sluice queue bounce` reports to the sender for each pending recipient.</summary>
    public const string OperatorBounceText = "550 5.0.0 returned to the sender by the mail system administrator";

    /// <summary>Held messages set aside: not tried until released.</summary>
    private readonly HashSet<SpooledMessage> _held = [];

    public MailQueue Queue => _queue;

    /// <summary>Holds the message durably; false if it was held already or is finished.</summary>
    public async Task<bool> HoldAsync(SpooledMessage m, CancellationToken ct)
    {
        if (m.Held || m.PendingRecipients == 0) return false;
        await _queue.Store.RecordHoldAsync(m, true, ct).ConfigureAwait(false);
        _log.Write($"hold msg {m.Id}: held by the operator, {m.PendingRecipients} recipients pending");
        return true;
    }

    /// <summary>Releases a held message durably: it is due as its recipients' next tries say.</summary>
    public async Task<bool> ReleaseAsync(SpooledMessage m, CancellationToken ct)
    {
        if (!m.Held || m.PendingRecipients == 0) return false;
        await _queue.Store.RecordHoldAsync(m, false, ct).ConfigureAwait(false);
        _log.Write($"release msg {m.Id}: released by the operator");
        lock (_gate)
            if (_held.Remove(m)) Wait(m);
        _promote.Writer.TryWrite(true);
        return true;
    }

    /// <summary>Deletes the message durably, without a bounce; returns the pending recipients it had.</summary>
    public async Task<int> DeleteAsync(SpooledMessage m, CancellationToken ct)
    {
        var removed = await _queue.Store.DeleteAsync(m, ct).ConfigureAwait(false);
        if (removed == 0) return 0;
        lock (_gate) _held.Remove(m);
        _log.Write($"delete msg {m.Id}: {removed} pending recipients removed by the operator, no bounce sent");
        _log.Write($"end msg {m.Id}");
        return removed;
    }

    /// <summary>
    /// Fails every pending recipient now with a bounce to the sender (RFC 3464 DSN, as for any failure,
    /// NOTIFY respected); returns how many. The bounce is durable before the failures it reports.
    /// </summary>
    public async Task<int> BounceAsync(SpooledMessage m, CancellationToken ct)
    {
        if (m.PendingRecipients == 0) return 0;
        var loaded = await _queue.Store.LoadAsync(m, ct).ConfigureAwait(false);
        var body = await _queue.Store.ReadBodyAsync(loaded, ct).ConfigureAwait(false);
        var failures = Enumerable.Range(0, loaded.Recipients.Count)
            .Where(i => m.States[i].Status == RecipientStatus.Pending)
            .Select(i => new DsnNotices.Failure(i, OperatorBounceText, BounceMessage.StatusOf(OperatorBounceText, expired: false)))
            .ToList();
        foreach (var f in failures)
            _log.Write($"bounce msg {m.Id}: {loaded.Recipients[f.Index]} returned to the sender by the operator");
        await _notices.FailedAsync(loaded, body, failures, _time.GetUtcNow(), ct).ConfigureAwait(false);
        foreach (var f in failures)
            await _queue.Store.RecordAsync(loaded, f.Index, RecipientStatus.Failed, DateTimeOffset.MinValue, f.Text, ct).ConfigureAwait(false);
        lock (_gate) _held.Remove(m);
        if (m.PendingRecipients == 0) _log.Write($"end msg {m.Id}");
        return failures.Count;
    }

    /// <summary>Makes these messages due now (`sluice queue flush` with a filter); held ones stay held.</summary>
    public void Flush(IReadOnlySet<SpooledMessage> messages)
    {
        lock (_gate)
        {
            foreach (var m in messages) m.MakeDue();
            // The waiting tier is ordered by due time: those that moved are queued again, once each.
            var waiting = _waiting.UnorderedItems.Select(w => w.Element).ToList();
            if (!waiting.Any(messages.Contains)) return;
            _waiting.Clear();
            foreach (var m in waiting) Wait(m);
        }
        _promote.Writer.TryWrite(true);
    }

    /// <summary>The job less its recipients finished meanwhile; null when its message is held or none is left.</summary>
    private static DeliveryJob? WithoutWithdrawn(DeliveryJob job)
    {
        var m = job.Message.Spooled;
        if (m.Held) return null;
        var pending = Array.FindAll(job.Recipients, i => m.States[i].Status == RecipientStatus.Pending);
        return pending.Length == 0 ? null : pending.Length == job.Recipients.Length ? job : job with { Recipients = pending };
    }
}
