// The seam between the Queue stage and its storage: the file spool implements it now, a
// PostgreSQL store later (ZMailer's queue in a database). Every Task completes only when durable.
using System.Threading.Channels;
using Sluice.Core.Mail;

namespace Sluice.Queue;

public interface IQueueStore : IAsyncDisposable
{
    int Number { get; }

    /// <summary>Live messages found at open, without their envelopes; the caller hands them to the scheduler.</summary>
    IReadOnlyCollection<SpooledMessage> Recovered { get; }

    /// <summary>
    /// Messages this queue took over while running (a shared queue's mail left by a node that is gone), without their
    /// envelopes; the todo stage hands them to the scheduler as it does <see cref="Recovered"/>. The file spool has none.
    /// </summary>
    ChannelReader<SpooledMessage> Claimed { get; }

    /// <summary>
    /// Whether a delivery of the message may start now: on a shared queue, false once another node holds it, and
    /// waits while this node's lease has lapsed (its mail may be taken meanwhile). The file spool always may.
    /// </summary>
    ValueTask<bool> MayDeliverAsync(SpooledMessage message, CancellationToken ct);

    int MessageCount { get; }
    int RecipientCount { get; }

    /// <summary>
    /// Stores message and envelope; completes only after both are on disk (fsync'd). The message's bytes are
    /// <paramref name="trace"/>'s, made with the id it gets here (none: no trace), then <paramref name="body"/>.
    /// </summary>
    Task<QueuedMessage> AcceptAsync(Envelope envelope, TraceHeader? trace, ReadOnlyMemory<byte> body, CancellationToken ct);

    /// <summary>Records a delivery outcome for one recipient durably; a final one may free the message.</summary>
    Task RecordAsync(QueuedMessage message, int recipient, RecipientStatus status, DateTimeOffset nextAttempt, string? lastError, CancellationToken ct);

    /// <summary>Records durably that the message has had its delay warning.</summary>
    Task RecordDelayWarningAsync(QueuedMessage message, CancellationToken ct);

    /// <summary>Records durably that the operator held (true) or released (false) the message.</summary>
    Task RecordHoldAsync(SpooledMessage message, bool held, CancellationToken ct);

    /// <summary>Records durably that the operator deleted the message; returns the pending recipients it had (0: none left).</summary>
    Task<int> DeleteAsync(SpooledMessage message, CancellationToken ct);

    /// <summary>A snapshot of the live messages (state only, no envelopes), for the operator's queue verbs.</summary>
    IReadOnlyList<SpooledMessage> LiveMessages();

    /// <summary>The live message with this sequence number, or null.</summary>
    SpooledMessage? Find(ulong sequence);

    /// <summary>Reads a waiting message's envelope back, to work on it.</summary>
    Task<QueuedMessage> LoadAsync(SpooledMessage message, CancellationToken ct);

    /// <summary>The message bytes as accepted (trace header included, CRLF lines, not dot-stuffed).</summary>
    Task<byte[]> ReadBodyAsync(QueuedMessage message, CancellationToken ct);

    /// <summary>Counters for the benchmark: durable commits (fsyncs) and records they carried.</summary>
    (long Syncs, long Records) CommitStats { get; }
}
