namespace Sluice.Queue;

/// <summary>What the Receive stage hands complete messages to; completes when the message is durable.</summary>
public interface IMessageAcceptor
{
    Task<QueuedMessage> AcceptAsync(string sender, IReadOnlyList<string> recipients, ReadOnlyMemory<byte> body, CancellationToken ct);
}
