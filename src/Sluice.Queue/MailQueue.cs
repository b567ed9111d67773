// One queue of the multi-queue (indimail's queueN): its store plus the in-memory announcement
// of each newly committed message to that queue's todo stage (qmail-todo's trigger, without a
// directory scan).
using Sluice.Core.Mail;
using System.Threading.Channels;

namespace Sluice.Queue;

public sealed class MailQueue(IQueueStore store) : IAsyncDisposable
{
    private long _accepted;
    private readonly Channel<QueuedMessage> _announcements = Channel.CreateUnbounded<QueuedMessage>(new() { SingleReader = true });

    public int Number => store.Number;
    public string Name => $"queue{store.Number}";
    public IQueueStore Store => store;

    /// <summary>Messages committed since start; the todo stage reads them (recovered ones it is handed at start).</summary>
    public ChannelReader<QueuedMessage> Announcements => _announcements.Reader;

    /// <summary>Messages accepted into this queue since start.</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    /// <summary>Slots in use over slots configured, as the scheduler reports it (indimail's qmonitor load).</summary>
    public Func<double> Load { get; set; } = () => 0;

    /// <summary>Durably stores the message, then announces it; the returned task is the 250.</summary>
    public async Task<QueuedMessage> AcceptAsync(Envelope envelope, ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        var message = await store.AcceptAsync(envelope, body, ct).ConfigureAwait(false);
        Interlocked.Increment(ref _accepted);
        _announcements.Writer.TryWrite(message);
        return message;
    }

    public async ValueTask DisposeAsync()
    {
        _announcements.Writer.TryComplete();
        await store.DisposeAsync().ConfigureAwait(false);
    }
}
