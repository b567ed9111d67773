// One queue of the multi-queue (indimail's queueN): its store plus the in-memory announcement
// of each newly committed message to that queue's todo stage (qmail-todo's trigger, without a
// directory scan).
using Sluice.Core.Mail;
using System.Threading.Channels;

namespace Sluice.Queue;

public sealed class MailQueue(IQueueStore store) : IAsyncDisposable
{
    private long _accepted;
    private readonly Lock _gate = new();
    private bool _closedToNewMail;
    private int _newMailInFlight;
    private TaskCompletionSource? _newMailDone;
    private readonly Channel<QueuedMessage> _announcements = Channel.CreateUnbounded<QueuedMessage>(new() { SingleReader = true });

    public int Number => store.Number;
    public string Name => $"queue{store.Number}";
    public IQueueStore Store => store;

    /// <summary>Messages committed since start; the todo stage reads them (recovered ones it is handed at start).</summary>
    public ChannelReader<QueuedMessage> Announcements => _announcements.Reader;

    /// <summary>Messages accepted into this queue since start.</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    /// <summary>The busiest channel's slots in use over its slots, as the scheduler reports it (indimail's qmonitor load).</summary>
    public Func<double> Load { get; set; } = () => 0;

    /// <summary>Durably stores the message, then announces it; the returned task is the 250.</summary>
    public async Task<QueuedMessage> AcceptAsync(Envelope envelope, TraceHeader? trace, ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        var message = await store.AcceptAsync(envelope, trace, body, ct).ConfigureAwait(false);
        Interlocked.Increment(ref _accepted);
        _announcements.Writer.TryWrite(message);
        return message;
    }

    /// <summary>False once the queue is retiring or disabled: the balancer sends it no more mail.</summary>
    public bool TakesNewMail
    {
        get
        {
            lock (_gate) return !_closedToNewMail;
        }
    }

    /// <summary>Accepts new mail unless the queue has stopped taking it (then null: the balancer picks another).</summary>
    public async Task<QueuedMessage?> AcceptNewAsync(Envelope envelope, TraceHeader? trace, ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        lock (_gate)
        {
            if (_closedToNewMail) return null;
            _newMailInFlight++;
        }
        try
        {
            return await AcceptAsync(envelope, trace, body, ct).ConfigureAwait(false);
        }
        finally
        {
            lock (_gate)
                if (--_newMailInFlight == 0) _newMailDone?.TrySetResult();
        }
    }

    /// <summary>Takes no more new mail; completes when the acceptances already begun have ended. Its own bounces still enter.</summary>
    public Task StopTakingNewMailAsync()
    {
        lock (_gate)
        {
            _closedToNewMail = true;
            if (_newMailInFlight == 0) return Task.CompletedTask;
            _newMailDone ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _newMailDone.Task;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _announcements.Writer.TryComplete();
        await store.DisposeAsync().ConfigureAwait(false);
    }
}
