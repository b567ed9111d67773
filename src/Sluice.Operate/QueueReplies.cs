// What the queue endpoints of the admin API answer (JSON): one message as `queue list` prints it,
// one message in full for `queue show`, the outcome of a bulk action, and `queue shape`'s table.
namespace Sluice.Operate;

/// <param name="NextTry">The earliest pending recipient's next try; null when it is due now.</param>
/// <param name="LastError">The last deferral reply of a pending recipient, if any.</param>
public sealed record MessageSummary(string Id, DateTimeOffset ReceivedAt, int Size, string Sender, int Recipients,
    IReadOnlyList<string> Pending, DateTimeOffset? NextTry, bool Held, string? LastError);

/// <param name="Status">pending, delivered, failed or deleted.</param>
/// <param name="Attempts">Tries recorded for this recipient (the spool keeps the count, not each try).</param>
/// <param name="NextTry">When a pending recipient is tried next; null when it is due now (not tried yet, or flushed).</param>
public sealed record RecipientDetail(string Address, string Status, int Attempts, DateTimeOffset? NextTry, string? LastReply,
    string? Notify, string? OriginalRecipient);

/// <param name="Headers">The message's header section as queued (the trace header included), cut at 64 KiB.</param>
public sealed record MessageDetail(MessageSummary Summary, string? EnvelopeId, string? Return, string? AuthenticatedAs,
    bool SmtpUtf8, bool EightBitMime, bool DelayWarned, IReadOnlyList<RecipientDetail> Recipients, string Headers);

/// <param name="Matched">Messages the ids or filter selected.</param>
/// <param name="Changed">Messages the action changed (a held message is not held again).</param>
/// <param name="Recipients">Recipients deleted or bounced; 0 for the other actions.</param>
public sealed record QueueActionReply(string Action, int Matched, int Changed, int Recipients, IReadOnlyList<string> NotFound);

/// <param name="BucketMinutes">Each bucket's upper age bound in minutes; the last bucket is open (older).</param>
/// <param name="Rows">The total first, then each domain by its total, largest first.</param>
public sealed record QueueShape(string Counted, IReadOnlyList<int> BucketMinutes, IReadOnlyList<ShapeRow> Rows);

/// <param name="Counts">Total, then one count per age bucket.</param>
public sealed record ShapeRow(string Domain, IReadOnlyList<int> Counts);

public sealed record ErrorReply(string Error);
