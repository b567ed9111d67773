// One accepted message as the queue knows it: envelope, per-recipient delivery state and where
// its bytes live in the spool. The body itself stays on disk until a delivery reads it.
using Sluice.Core.Mail;

namespace Sluice.Queue;

public enum RecipientStatus : byte
{
    Pending = 0,
    Delivered = 1,
    Failed = 2,
}

public sealed class RecipientState
{
    public RecipientStatus Status { get; internal set; }
    public int Attempts { get; internal set; }
    /// <summary>Not before this time; <see cref="DateTimeOffset.MinValue"/> means at once.</summary>
    public DateTimeOffset NextAttempt { get; internal set; } = DateTimeOffset.MinValue;
    public string? LastError { get; internal set; }
}

public sealed class QueuedMessage
{
    internal QueuedMessage(int queue, ulong sequence, Envelope envelope, DateTimeOffset receivedAt, int bodyLength)
    {
        QueueNumber = queue;
        Sequence = sequence;
        Envelope = envelope;
        ReceivedAt = receivedAt;
        BodyLength = bodyLength;
        var states = new RecipientState[envelope.Recipients.Count];
        for (int i = 0; i < states.Length; i++) states[i] = new RecipientState();
        States = states;
        _pending = states.Length;
    }

    public int QueueNumber { get; }
    internal ulong Sequence { get; }
    /// <summary>"queue.sequence": unique within a Queue.Base, never reused.</summary>
    public string Id => FormatId(QueueNumber, Sequence);
    /// <summary>Envelope sender; "" is the null reverse-path of a bounce.</summary>
    public string Sender => Envelope.Sender;
    public IReadOnlyList<string> Recipients => Envelope.Recipients;
    public Envelope Envelope { get; }
    public IReadOnlyList<RecipientState> States { get; }
    public DateTimeOffset ReceivedAt { get; }
    public int BodyLength { get; }
    public int PendingRecipients => Volatile.Read(ref _pending);

    internal int _pending;
    internal int Segment { get; set; }
    internal long BodyOffset { get; set; }

    internal static string FormatId(int queue, ulong sequence) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{queue}.{sequence}");
}
