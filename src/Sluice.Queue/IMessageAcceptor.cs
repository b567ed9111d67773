using Sluice.Core.Mail;

namespace Sluice.Queue;

/// <summary>What the Receive stage hands complete messages to; completes when the message is durable.</summary>
public interface IMessageAcceptor
{
    /// <param name="trace">The Received header to put in front of <paramref name="body"/>, given the queue id (see <see cref="IQueueStore.AcceptAsync"/>).</param>
    Task<QueuedMessage> AcceptAsync(Envelope envelope, TraceHeader? trace, ReadOnlyMemory<byte> body, CancellationToken ct);
}
