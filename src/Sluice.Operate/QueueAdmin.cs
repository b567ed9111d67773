// The running server's side of `sluice queue list|show|flush|hold|release|delete|bounce|shape`.
// Messages are walked one queue at a time from a snapshot of references (no envelopes); an envelope
// is read back (one pread) only while its message is looked at, so a million queued messages are
// never all in memory. Bulk actions run a bounded number at a time: each is a durable spool record,
// and records written together share one group commit.
using System.Runtime.CompilerServices;
using System.Text;
using Sluice.Core.Mail;
using Sluice.Queue;
using Sluice.Scheduling;

namespace Sluice.Operate;

public sealed class QueueAdmin(Func<IReadOnlyList<QueueScheduler>> schedulers, TimeProvider time)
{
    public static readonly string[] Actions = ["hold", "release", "delete", "bounce", "flush"];
    /// <summary>Actions in flight at once: enough to fill group commits, few enough to keep envelopes read back few.</summary>
    private const int Parallelism = 64;
    private const int MaxHeaderBytes = 64 << 10;

    private sealed record Selected(QueueScheduler Scheduler, SpooledMessage Message, QueuedMessage? Loaded);

    public async IAsyncEnumerable<MessageSummary> ListAsync(QueueSelection selection, [EnumeratorCancellation] CancellationToken ct)
    {
        var now = time.GetUtcNow();
        await foreach (var s in SelectAsync(selection, [], withEnvelope: true, ct).ConfigureAwait(false))
            yield return Summary(s.Loaded!, now);
    }

    public async Task<MessageDetail?> ShowAsync(string id, CancellationToken ct)
    {
        if (!SpooledMessage.TryParseId(id, out var queue, out var seq)
            || schedulers().FirstOrDefault(s => s.Queue.Number == queue) is not { } scheduler
            || scheduler.Queue.Store.Find(seq) is not { } m
            || await TryLoadAsync(scheduler, m, ct).ConfigureAwait(false) is not { } q)
            return null;
        byte[] body;
        try
        {
            body = await scheduler.Queue.Store.ReadBodyAsync(q, ct).ConfigureAwait(false);
        }
        catch (Exception x) when (x is IOException or KeyNotFoundException or ObjectDisposedException)
        {
            return null; // finished while being read: its segment is gone
        }
        var e = q.Envelope;
        var recipients = q.Recipients.Select((r, i) =>
        {
            var state = q.States[i];
            var dsn = e.DsnOf(i);
            return new RecipientDetail(r, state.Status.ToString().ToLowerInvariant(), state.Attempts,
                state.Status == RecipientStatus.Pending && state.NextAttempt != DateTimeOffset.MinValue ? state.NextAttempt : null,
                state.LastError, dsn.Notify == DsnNotify.Unspecified ? null : DsnParameters.Notify(dsn.Notify), dsn.OriginalRecipient);
        }).ToList();
        return new MessageDetail(Summary(q, time.GetUtcNow()), e.EnvelopeId, e.Return == DsnReturn.Unspecified ? null : e.Return.ToString().ToUpperInvariant(),
            e.AuthenticatedAs, e.SmtpUtf8, e.EightBitMime, m.DelayWarned, recipients, Headers(body));
    }

    /// <summary>Applies one of <see cref="Actions"/> to every selected message; runs to the end even if the client goes away.</summary>
    public async Task<QueueActionReply> ActAsync(string action, QueueSelection selection)
    {
        var notFound = new List<string>();
        int matched = 0, changed = 0, recipients = 0;
        var flush = new Dictionary<QueueScheduler, HashSet<SpooledMessage>>();
        var options = new ParallelOptions { MaxDegreeOfParallelism = Parallelism };
        await Parallel.ForEachAsync(SelectAsync(selection, notFound, withEnvelope: false, CancellationToken.None), options, async (s, ct) =>
        {
            Interlocked.Increment(ref matched);
            var (scheduler, m) = (s.Scheduler, s.Message);
            int n;
            switch (action)
            {
                case "hold": n = await scheduler.HoldAsync(m, ct).ConfigureAwait(false) ? 1 : 0; break;
                case "release": n = await scheduler.ReleaseAsync(m, ct).ConfigureAwait(false) ? 1 : 0; break;
                case "delete": n = await scheduler.DeleteAsync(m, ct).ConfigureAwait(false); break;
                case "bounce": n = await scheduler.BounceAsync(m, ct).ConfigureAwait(false); break;
                default:
                    lock (flush)
                    {
                        if (!flush.TryGetValue(scheduler, out var set)) flush[scheduler] = set = [];
                        set.Add(m);
                    }
                    n = 1;
                    break;
            }
            if (n == 0) return;
            Interlocked.Increment(ref changed);
            if (action is "delete" or "bounce") Interlocked.Add(ref recipients, n);
        }).ConfigureAwait(false);
        foreach (var (scheduler, set) in flush) scheduler.Flush(set);
        return new QueueActionReply(action, matched, changed, recipients, notFound);
    }

    /// <summary>Postfix qshape: pending recipients by domain (or messages by sender domain) and age bucket.</summary>
    /// <param name="bucketMinutes">The first bucket's upper bound; each next one doubles it.</param>
    /// <param name="buckets">Buckets in all, the last one open (older than the others).</param>
    public async Task<QueueShape> ShapeAsync(QueueSelection selection, bool bySender, int bucketMinutes, int buckets, CancellationToken ct)
    {
        var bounds = Enumerable.Range(0, buckets - 1).Select(i => bucketMinutes << i).ToList();
        var rows = new Dictionary<string, int[]>(StringComparer.OrdinalIgnoreCase);
        var total = new int[buckets + 1];
        var now = time.GetUtcNow();
        void Count(string domain, int bucket)
        {
            if (!rows.TryGetValue(domain, out var counts)) rows[domain] = counts = new int[buckets + 1];
            counts[0]++;
            counts[bucket + 1]++;
            total[0]++;
            total[bucket + 1]++;
        }
        await foreach (var s in SelectAsync(selection, [], withEnvelope: true, ct).ConfigureAwait(false))
        {
            var q = s.Loaded!;
            var minutes = (now - q.ReceivedAt).TotalMinutes;
            var bucket = bounds.FindIndex(b => minutes < b) is var i and >= 0 ? i : buckets - 1;
            if (bySender) Count(q.Sender.Length == 0 ? "<>" : Address.DomainOf(q.Sender), bucket);
            else
                for (int r = 0; r < q.Recipients.Count; r++)
                    if (q.States[r].Status == RecipientStatus.Pending) Count(Address.DomainOf(q.Recipients[r]), bucket);
        }
        List<ShapeRow> table = [new("TOTAL", total), .. rows.OrderByDescending(r => r.Value[0]).ThenBy(r => r.Key, StringComparer.Ordinal)
            .Select(r => new ShapeRow(r.Key, r.Value))];
        return new QueueShape(bySender ? "messages by sender domain" : "pending recipients by recipient domain", bounds, table);
    }

    /// <summary>The selected live messages, one queue after another, oldest first in each.</summary>
    private async IAsyncEnumerable<Selected> SelectAsync(QueueSelection selection, List<string> notFound, bool withEnvelope,
        [EnumeratorCancellation] CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var queues = schedulers();
        foreach (var id in selection.Ids)
            if (!SpooledMessage.TryParseId(id, out var queue, out var seq) || queues.FirstOrDefault(s => s.Queue.Number == queue)?.Queue.Store.Find(seq) is null)
                lock (notFound) notFound.Add(id);
        foreach (var scheduler in queues)
        {
            var store = scheduler.Queue.Store;
            IEnumerable<SpooledMessage> candidates = selection.Ids.Count > 0
                ? selection.Ids.Select(id => SpooledMessage.TryParseId(id, out var q, out var seq) && q == scheduler.Queue.Number ? store.Find(seq) : null)
                    .OfType<SpooledMessage>().Distinct()
                : store.LiveMessages().OrderBy(m => m.ReceivedAt);
            foreach (var m in candidates)
            {
                if (!selection.MatchesState(m, now)) continue;
                QueuedMessage? loaded = null;
                if (withEnvelope || selection.NeedsEnvelope)
                {
                    loaded = await TryLoadAsync(scheduler, m, ct).ConfigureAwait(false);
                    if (loaded is null || !selection.MatchesEnvelope(loaded)) continue;
                }
                yield return new Selected(scheduler, m, loaded);
            }
        }
    }

    /// <summary>Reads the envelope back; null when the message finished meanwhile (its segment may be gone).</summary>
    private static async Task<QueuedMessage?> TryLoadAsync(QueueScheduler scheduler, SpooledMessage m, CancellationToken ct)
    {
        if (m.PendingRecipients == 0) return null;
        try
        {
            return await scheduler.Queue.Store.LoadAsync(m, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or KeyNotFoundException or ObjectDisposedException)
        {
            return null;
        }
    }

    private static MessageSummary Summary(QueuedMessage q, DateTimeOffset now)
    {
        var pending = new List<string>();
        string? lastError = null;
        for (int i = 0; i < q.Recipients.Count; i++)
        {
            if (q.States[i].Status != RecipientStatus.Pending) continue;
            pending.Add(q.Recipients[i]);
            lastError ??= q.States[i].LastError;
        }
        var due = q.Spooled.Due;
        return new MessageSummary(q.Id, q.ReceivedAt, q.BodyLength, q.Sender, q.Recipients.Count, pending,
            due > now && due != DateTimeOffset.MaxValue ? due : null, q.Spooled.Held, lastError);
    }

    private static string Headers(byte[] body)
    {
        var end = body.AsSpan(0, Math.Min(body.Length, MaxHeaderBytes)).IndexOf("\r\n\r\n"u8);
        return Encoding.UTF8.GetString(body, 0, end >= 0 ? end + 2 : Math.Min(body.Length, MaxHeaderBytes));
    }
}
