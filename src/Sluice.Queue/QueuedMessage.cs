// One accepted message in its two forms. SpooledMessage is what the queue keeps of every live message:
// where its record lies and each recipient's state, but no envelope, so a million waiting messages cost
// little memory. QueuedMessage is a message being worked on: the same state plus the envelope read back.
using Sluice.Core.Mail;

namespace Sluice.Queue;

public enum RecipientStatus : byte
{
    Pending = 0,
    Delivered = 1,
    Failed = 2,
    /// <summary>Removed by the operator (`sluice queue delete`): in memory only, the spool records it once per message.</summary>
    Deleted = 3,
}

/// <summary>One recipient's delivery state; packed into 24 bytes because a waiting message keeps one per recipient.</summary>
public readonly struct RecipientState
{
    /// <summary>0 is "at once": the default state, which every recipient of a new message starts in, must mean it (not 1970).</summary>
    private readonly long _nextAttemptMs;

    internal RecipientState(RecipientStatus status, int attempts, DateTimeOffset nextAttempt, string? lastError)
    {
        Status = status;
        Attempts = attempts;
        _nextAttemptMs = nextAttempt == DateTimeOffset.MinValue ? 0 : nextAttempt.ToUnixTimeMilliseconds();
        LastError = lastError;
    }

    public RecipientStatus Status { get; }
    public int Attempts { get; }
    /// <summary>Not before this time; <see cref="DateTimeOffset.MinValue"/> means at once.</summary>
    public DateTimeOffset NextAttempt => _nextAttemptMs == 0 ? DateTimeOffset.MinValue : DateTimeOffset.FromUnixTimeMilliseconds(_nextAttemptMs);
    public string? LastError { get; }
}

public sealed class SpooledMessage
{
    private readonly RecipientState[] _states;
    private int _pending;

    internal SpooledMessage(int queue, ulong sequence, DateTimeOffset receivedAt, int recipients, int bodyLength)
    {
        QueueNumber = queue;
        Sequence = sequence;
        _receivedAtMs = receivedAt.ToUnixTimeMilliseconds();
        BodyLength = bodyLength;
        _states = new RecipientState[recipients];
        _pending = recipients;
    }

    private readonly long _receivedAtMs;

    public int QueueNumber { get; }
    internal ulong Sequence { get; }
    /// <summary>"queue.sequence": unique within a Queue.Base, never reused.</summary>
    public string Id => FormatId(QueueNumber, Sequence);
    public DateTimeOffset ReceivedAt => DateTimeOffset.FromUnixTimeMilliseconds(_receivedAtMs);
    public int BodyLength { get; }
    public IReadOnlyList<RecipientState> States => _states;
    public int PendingRecipients
    {
        get
        {
            lock (_states) return _pending;
        }
    }
    /// <summary>The message has had its delay warning (Retry.DelayWarning); kept in the spool so a restart does not repeat it.</summary>
    public bool DelayWarned { get; internal set; }
    /// <summary>Held by the operator (`sluice queue hold`): not tried until released; kept in the spool across restarts.</summary>
    public bool Held { get; internal set; }

    /// <summary>When the earliest pending recipient may be tried; MaxValue when none is pending.</summary>
    public DateTimeOffset Due
    {
        get
        {
            var due = DateTimeOffset.MaxValue;
            foreach (var s in _states)
                if (s.Status == RecipientStatus.Pending && s.NextAttempt < due) due = s.NextAttempt;
            return due;
        }
    }

    /// <summary>Makes every pending recipient due now (`sluice queue flush`), in memory only, as qmail-send's flush.</summary>
    public void MakeDue()
    {
        lock (_states)
            for (int i = 0; i < _states.Length; i++)
                if (_states[i] is { Status: RecipientStatus.Pending } s && s.NextAttempt != DateTimeOffset.MinValue)
                    _states[i] = new RecipientState(s.Status, s.Attempts, DateTimeOffset.MinValue, s.LastError);
    }

    internal int Segment { get; set; }
    internal long EnvelopeOffset { get; set; }
    internal int EnvelopeLength { get; set; }
    /// <summary>The body follows the envelope and its 4-byte length.</summary>
    internal long BodyOffset => EnvelopeOffset + EnvelopeLength + sizeof(int);

    /// <summary>
    /// Sets a recipient's state; true when this made the message finished (its last pending recipient became
    /// final). Locked: deliveries to other domains and the operator's verbs may set states of one message at once.
    /// </summary>
    /// <param name="becameFinal">The recipient was pending and is final now.</param>
    internal bool Set(int recipient, RecipientStatus status, int attempts, DateTimeOffset nextAttempt, string? lastError, out bool becameFinal)
    {
        lock (_states)
        {
            var wasPending = _states[recipient].Status == RecipientStatus.Pending;
            // A final outcome is never undone: a late deferral of a recipient already done only counts the attempt.
            if (!wasPending) status = _states[recipient].Status;
            _states[recipient] = new RecipientState(status, attempts, nextAttempt, lastError);
            becameFinal = wasPending && status != RecipientStatus.Pending;
            return becameFinal && --_pending == 0;
        }
    }

    /// <summary>Marks every pending recipient deleted; returns how many were (0: already finished, by someone else).</summary>
    internal int Delete()
    {
        lock (_states)
        {
            var deleted = _pending;
            for (int i = 0; i < _states.Length; i++)
                if (_states[i] is { Status: RecipientStatus.Pending } s)
                    _states[i] = new RecipientState(RecipientStatus.Deleted, s.Attempts, DateTimeOffset.MinValue, s.LastError);
            _pending = 0;
            return deleted;
        }
    }

    internal static string FormatId(int queue, ulong sequence) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{queue}.{sequence}");

    /// <summary>Reads an <see cref="Id"/> ("queue.sequence") as an operator types it.</summary>
    public static bool TryParseId(string id, out int queue, out ulong sequence)
    {
        sequence = 0;
        var dot = id.IndexOf('.', StringComparison.Ordinal);
        const System.Globalization.NumberStyles digits = System.Globalization.NumberStyles.None;
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        return int.TryParse(id.AsSpan(0, Math.Max(dot, 0)), digits, inv, out queue) && dot > 0
            && ulong.TryParse(id.AsSpan(dot + 1), digits, inv, out sequence);
    }
}

public sealed class QueuedMessage(SpooledMessage spooled, Envelope envelope)
{
    public SpooledMessage Spooled { get; } = spooled;
    public Envelope Envelope { get; } = envelope;
    public int QueueNumber => Spooled.QueueNumber;
    public string Id => Spooled.Id;
    /// <summary>Envelope sender; "" is the null reverse-path of a bounce.</summary>
    public string Sender => Envelope.Sender;
    public IReadOnlyList<string> Recipients => Envelope.Recipients;
    public IReadOnlyList<RecipientState> States => Spooled.States;
    public DateTimeOffset ReceivedAt => Spooled.ReceivedAt;
    public int BodyLength => Spooled.BodyLength;
    public int PendingRecipients => Spooled.PendingRecipients;
}
