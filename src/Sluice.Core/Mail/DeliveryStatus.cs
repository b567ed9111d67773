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

/// <summary>What a <see cref="DeliveryStatus.Delivered"/> recipient means for a NOTIFY=SUCCESS request (RFC 3461 §5.2).</summary>
public enum SuccessAction : byte
{
    /// <summary>Final delivery, e.g. into a mailbox: a success DSN says "delivered" (§5.2.3).</summary>
    Delivered,
    /// <summary>Handed to a next hop without the DSN extension: a success DSN says "relayed" (§5.2.2).</summary>
    Relayed,
    /// <summary>Handed to a next hop that took NOTIFY and ORCPT (§5.2.1): notices are its job now, none from us.</summary>
    PassedOn,
}

/// <param name="Text">Reply or reason, beginning with the code and enhanced status where there is one.</param>
public sealed record RecipientResult(DeliveryStatus Status, string Text)
{
    /// <summary>Meaningful for <see cref="DeliveryStatus.Delivered"/> only.</summary>
    public SuccessAction Action { get; init; }

    /// <summary>
    /// The destination itself failed (connection refused or timed out, a 421 greeting or reply): a
    /// deferral that says nothing about this recipient, and makes the scheduler back off the destination.
    /// </summary>
    public bool DestinationUnavailable { get; init; }

    /// <summary>The next hop's reply this outcome is, when it is one (its Text then reads "PEER said: REPLY"); null for an outcome of our own.</summary>
    public RemoteReply? Remote { get; init; }

    public static RecipientResult Deferred(string text) => new(DeliveryStatus.Deferred, text);
    public static RecipientResult Unavailable(string text) => new(DeliveryStatus.Deferred, text) { DestinationUnavailable = true };
    public static RecipientResult Failed(string text) => new(DeliveryStatus.Failed, text);
    public static RecipientResult Delivered(string text, SuccessAction action = SuccessAction.Delivered) => new(DeliveryStatus.Delivered, text) { Action = action };
}
