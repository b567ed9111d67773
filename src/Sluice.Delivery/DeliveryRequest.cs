// The contract between the scheduler and a delivery agent (Postfix's deliver_request): one
// message, its sender, and recipients that share one destination; one result per recipient.
using Sluice.Core.Mail;

namespace Sluice.Delivery;

/// <param name="Destination">Domain the recipients share (routing key for SMTP agents).</param>
/// <param name="Message">Message bytes as spooled: CRLF lines, not dot-stuffed.</param>
public sealed record DeliveryRequest(string MessageId, string Sender, IReadOnlyList<string> Recipients, string Destination, ReadOnlyMemory<byte> Message)
{
    /// <summary>The message's envelope, for its message-wide parameters (RET, ENVID, SMTPUTF8, BODY); null for none.</summary>
    public Envelope? Envelope { get; init; }

    /// <summary>The RFC 3461 NOTIFY and ORCPT of each of <see cref="Recipients"/>, same order; null when none asked.</summary>
    public IReadOnlyList<RecipientDsn>? Dsn { get; init; }

    public RecipientDsn DsnOf(int recipient) => Dsn is { } d ? d[recipient] : default;

    /// <summary>The same result for every recipient: what a failure before any RCPT, or of the agent itself, means.</summary>
    public RecipientResult[] ForEach(RecipientResult result) => [.. Enumerable.Repeat(result, Recipients.Count)];
}

public interface IDeliveryAgent : IAsyncDisposable
{
    /// <summary>Returns one result per recipient, in order; never throws for a delivery problem.</summary>
    Task<RecipientResult[]> DeliverAsync(DeliveryRequest request, CancellationToken ct);

    /// <summary>
    /// Where mail for <paramref name="domain"/> really goes, the key the scheduler's per-destination
    /// limits count by: two domains this agent sends to the same place share one destination.
    /// </summary>
    string DestinationOf(string domain) => domain;
}
