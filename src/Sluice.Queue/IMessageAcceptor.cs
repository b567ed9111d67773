using Sluice.Core.Mail;

namespace Sluice.Queue;

/// <summary>What the Receive stage hands complete messages to; completes when the message is durable.</summary>
public interface IMessageAcceptor
{
    Task<QueuedMessage> AcceptAsync(Envelope envelope, ReadOnlyMemory<byte> body, CancellationToken ct);
}
