// The outcome of one delivery attempt for one recipient, as a delivery agent reports it to the
// scheduler (Postfix's deliver_request/dsn split: the text carries the RFC 3463 status).
namespace Sluice.Core.Mail;

public enum DeliveryStatus
{
    /// <summary>Accepted by the next hop or written to the mailbox.</summary>
    Delivered,
    /// <summary>Temporary failure (4xx, connection trouble): try again later.</summary>
    Deferred,
    /// <summary>Permanent failure (5xx): bounce to the sender.</summary>
    Failed,
}

/// <param name="Text">Reply or reason, beginning with the code and enhanced status where there is one.</param>
public sealed record RecipientResult(DeliveryStatus Status, string Text)
{
    public static RecipientResult Deferred(string text) => new(DeliveryStatus.Deferred, text);
    public static RecipientResult Failed(string text) => new(DeliveryStatus.Failed, text);
    public static RecipientResult Delivered(string text) => new(DeliveryStatus.Delivered, text);
}
