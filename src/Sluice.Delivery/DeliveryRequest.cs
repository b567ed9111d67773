// The contract between the scheduler and a delivery agent (Postfix's deliver_request): one
// message, its sender, and recipients that share one destination; one result per recipient.
using Sluice.Core.Mail;

namespace Sluice.Delivery;

/// <param name="Destination">Domain the recipients share (routing key for SMTP agents).</param>
/// <param name="Message">Message bytes as spooled: CRLF lines, not dot-stuffed.</param>
public sealed record DeliveryRequest(string MessageId, string Sender, IReadOnlyList<string> Recipients, string Destination, ReadOnlyMemory<byte> Message);

public interface IDeliveryAgent : IAsyncDisposable
{
    /// <summary>Returns one result per recipient, in order; never throws for a delivery problem.</summary>
    Task<RecipientResult[]> DeliverAsync(DeliveryRequest request, CancellationToken ct);
}
