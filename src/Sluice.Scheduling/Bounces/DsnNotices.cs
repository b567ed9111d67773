// Who is told what (RFC 3461 §4.1 NOTIFY): a failure report ("bounce") or a success report for
// the recipients that asked, accepted into the message's own queue, with a delivery log line for
// each report made and each failure a NOTIFY kept silent. A report to an alias (or an SRS address)
// is expanded as the receiver expands mail, so it reaches the mailboxes behind it.
using Sluice.Core.Logging;
using Sluice.Core.Mail;
using Sluice.Core.Mailboxes;
using Sluice.Queue;
using static Sluice.Scheduling.Bounces.BounceMessage;

namespace Sluice.Scheduling.Bounces;

/// <param name="postmaster">Where a double bounce goes: the failure report of a null-sender message.</param>
/// <param name="mailboxes">The mailbox map in force (a reload replaces it), whose aliases reports are expanded with.</param>
internal sealed class DsnNotices(MailQueue queue, DeliveryLog log, string hostname, string postmaster, Func<MailboxMap?> mailboxes)
{
    /// <summary>A failed recipient of the message: its index, the reason, its RFC 3463 status, and the next hop's reply when the failure is one.</summary>
    public readonly record struct Failure(int Index, string Text, string Status, RemoteReply? Remote = null);

    /// <summary>Bounces the failures whose NOTIFY includes FAILURE (the default); returns once the bounce is durable.</summary>
    public async Task FailedAsync(QueuedMessage m, byte[] body, IReadOnlyList<Failure> failures, DateTimeOffset now, CancellationToken ct)
    {
        if (failures.Count == 0) return;
        if (m.Envelope.DoubleBounce)
        {
            log.Write($"triple bounce: discarding msg {m.Id}");
            return;
        }
        if (m.Sender.Length == 0)
        {
            // Postfix/qmail: a failed bounce cannot go back, so one report goes to the postmaster, marked
            // so that its own failure ends here. NOTIFY is not asked: it was the sender's wish, and there is none.
            var all = failures.Select(f => new ReportedRecipient(m.Recipients[f.Index], m.Envelope.DsnOf(f.Index).OriginalRecipient,
                ReportAction.Failed, f.Status, f.Text, f.Remote)).ToList();
            var notice = await SendAsync(m, body, all, postmaster, now, ct).ConfigureAwait(false);
            log.Write($"double bounce msg {m.Id} qp {Ids(notice)}");
            return;
        }
        var wanted = new List<ReportedRecipient>(failures.Count);
        foreach (var f in failures)
        {
            var dsn = m.Envelope.DsnOf(f.Index);
            if (dsn.Wants(DsnNotify.Failure))
                wanted.Add(new(m.Recipients[f.Index], dsn.OriginalRecipient, ReportAction.Failed, f.Status, f.Text, f.Remote));
            else // NEVER, or SUCCESS/DELAY without FAILURE; the delivery line already logged the failure
                log.Write($"bounce msg {m.Id}: suppressed for {m.Recipients[f.Index]} (NOTIFY={DsnParameters.Notify(dsn.Notify)})");
        }
        if (wanted.Count == 0) return;
        var bounce = await SendAsync(m, body, wanted, m.Sender, now, ct).ConfigureAwait(false);
        log.Write($"bounce msg {m.Id} qp {Ids(bounce)}");
    }

    /// <summary>
    /// Reports the delivered recipients whose NOTIFY includes SUCCESS: "delivered" for final delivery,
    /// "relayed" to a next hop without DSN (RFC 3461 §5.2.2, §5.2.3); nothing when the next hop took
    /// the request over (§5.2.1) or the sender is null.
    /// </summary>
    public async Task SucceededAsync(QueuedMessage m, byte[] body, IReadOnlyList<(int Index, RecipientResult Result)> delivered, DateTimeOffset now, CancellationToken ct)
    {
        if (m.Sender.Length == 0 || m.Envelope.Dsn is null) return;
        var wanted = new List<ReportedRecipient>();
        foreach (var (index, result) in delivered)
        {
            var dsn = m.Envelope.DsnOf(index);
            if (!dsn.Wants(DsnNotify.Success) || result.Action == SuccessAction.PassedOn) continue;
            var action = result.Action == SuccessAction.Relayed ? ReportAction.Relayed : ReportAction.Delivered;
            wanted.Add(new(m.Recipients[index], dsn.OriginalRecipient, action, "2.0.0", result.Text, result.Remote));
        }
        if (wanted.Count == 0) return;
        var notice = await SendAsync(m, body, wanted, m.Sender, now, ct).ConfigureAwait(false);
        log.Write($"success dsn msg {m.Id} qp {Ids(notice)}");
    }

    /// <summary>
    /// A delay warning (RFC 3464 Action: delayed) for the deferred recipients whose NOTIFY includes DELAY (as the
    /// default does: RFC 3461 §4.1 leaves DELAY to the MTA, and warnings are on only if configured); none for a null sender.
    /// </summary>
    /// <param name="deferred">Each deferred recipient's index, its last deferral and the next hop's reply when the deferral is one.</param>
    public async Task DelayedAsync(QueuedMessage m, byte[] body, IReadOnlyList<(int Index, string Text, RemoteReply? Remote)> deferred, DateTimeOffset now, CancellationToken ct)
    {
        if (m.Sender.Length == 0) return;
        var wanted = new List<ReportedRecipient>();
        foreach (var (index, text, remote) in deferred)
        {
            var dsn = m.Envelope.DsnOf(index);
            if (dsn.Wants(DsnNotify.Delay))
                wanted.Add(new(m.Recipients[index], dsn.OriginalRecipient, ReportAction.Delayed, DelayStatusOf(text), text, remote));
        }
        if (wanted.Count == 0) return;
        var notice = await SendAsync(m, body, wanted, m.Sender, now, ct).ConfigureAwait(false);
        log.Write($"delay warning msg {m.Id} qp {Ids(notice)}");
    }

    /// <summary>RFC 3461 §6.1: to the original sender (or postmaster) from the null reverse-path, so a report never causes another.</summary>
    private async Task<IReadOnlyList<QueuedMessage>> SendAsync(QueuedMessage m, byte[] body, List<ReportedRecipient> recipients, string to, DateTimeOffset now, CancellationToken ct)
    {
        var report = Build(hostname, m, body, recipients, to, now);
        var envelope = new Envelope("", [to])
        {
            DoubleBounce = m.Sender.Length == 0, // only a report on a null-sender message is sent for one
            SmtpUtf8 = m.Envelope.SmtpUtf8, // the sender's address may be UTF-8 (RFC 6531); relaying checks what is needed
            EightBitMime = !System.Text.Ascii.IsValid(report),
        };
        var queued = new List<QueuedMessage>();
        foreach (var part in mailboxes() is { } map ? AliasSplit.Split(envelope, report, map) : [new(envelope, report)])
            queued.Add(await queue.AcceptAsync(part.Envelope, null, part.Message, ct).ConfigureAwait(false));
        return queued;
    }

    private static string Ids(IReadOnlyList<QueuedMessage> queued) => string.Join(' ', queued.Select(q => q.Id));
}
