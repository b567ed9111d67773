// Idle SMTP connections kept per host:port for the next message to the same place (Postfix's
// connection cache): a connection carries up to MessagesPerConnection messages, and one idle
// longer than IdleTimeout is closed with QUIT.
using System.Collections.Concurrent;
using Sluice.Core.Configuration;
using Sluice.Smtp;

namespace Sluice.Delivery.Smtp;

internal sealed class SmtpConnectionPool : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, ConcurrentStack<(SmtpClientConnection Connection, long IdleSince)>> _idle = new();
    private readonly DeliveryOptions _options;
    private readonly TimeProvider _time;
    private readonly ITimer _sweeper;

    public SmtpConnectionPool(DeliveryOptions options, TimeProvider time)
    {
        _options = options;
        _time = time;
        var period = options.IdleTimeout > TimeSpan.Zero ? options.IdleTimeout / 2 : TimeSpan.FromSeconds(1);
        _sweeper = time.CreateTimer(_ => _ = SweepAsync(), null, period, period);
    }

    /// <summary>
    /// An idle connection to <paramref name="key"/>, or null. A stale one found on the way is closed first, and
    /// awaited: the receiver counts it as a session until it is gone, and our caller may be about to open another.
    /// </summary>
    public async ValueTask<SmtpClientConnection?> TakeAsync(string key)
    {
        if (!_idle.TryGetValue(key, out var stack)) return null;
        while (stack.TryPop(out var entry))
        {
            if (entry.Connection.Usable && !IsStale(entry.IdleSince)) return entry.Connection;
            await entry.Connection.QuitAsync().ConfigureAwait(false);
        }
        return null;
    }

    /// <summary>Keeps the connection for the next message, or closes it; completes once it is closed, so the delivery's slot is free only then.</summary>
    public Task ReturnAsync(string key, SmtpClientConnection connection)
    {
        if (!connection.Usable || connection.MessagesSent >= _options.MessagesPerConnection || _options.IdleTimeout == TimeSpan.Zero)
            return connection.QuitAsync();
        _idle.GetOrAdd(key, _ => new()).Push((connection, _time.GetTimestamp()));
        return Task.CompletedTask;
    }

    /// <summary>Closes one idle connection, whichever comes first, to free its descriptor; none idle, nothing happens.</summary>
    public void CloseOneIdle()
    {
        foreach (var stack in _idle.Values)
            if (stack.TryPop(out var entry))
            {
                _ = entry.Connection.QuitAsync();
                return;
            }
    }

    private bool IsStale(long idleSince) => _time.GetElapsedTime(idleSince) > _options.IdleTimeout;

    private async Task SweepAsync()
    {
        foreach (var stack in _idle.Values)
        {
            var keep = new List<(SmtpClientConnection, long)>();
            while (stack.TryPop(out var entry))
            {
                if (IsStale(entry.IdleSince)) await entry.Connection.QuitAsync().ConfigureAwait(false);
                else keep.Add(entry);
            }
            for (int i = keep.Count - 1; i >= 0; i--) stack.Push(keep[i]);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _sweeper.DisposeAsync().ConfigureAwait(false);
        // All at once: with thousands idle, one QUIT after another (each allowed seconds) would hold the stop for minutes.
        var quits = new List<Task>();
        foreach (var stack in _idle.Values)
            while (stack.TryPop(out var entry)) quits.Add(entry.Connection.QuitAsync());
        await Task.WhenAll(quits).ConfigureAwait(false);
    }
}
