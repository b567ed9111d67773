// Idle SMTP connections kept per host:port for the next message to the same place (Postfix's
// connection cache): a connection carries up to MessagesPerConnection messages, and one idle
// longer than IdleTimeout is closed with QUIT.
using System.Collections.Concurrent;
using Sluice.Core.Configuration;
using Sluice.Smtp;

namespace Sluice.Delivery.Smtp;

internal sealed class SmtpConnectionPool : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, IdleConnections> _idle = new();
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
        if (!_idle.TryGetValue(key, out var idle)) return null;
        while (idle.TryTakeNewest(out var entry))
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
        _idle.GetOrAdd(key, _ => new()).Add(connection, _time.GetTimestamp());
        return Task.CompletedTask;
    }

    /// <summary>Closes one idle connection, whichever comes first, to free its descriptor; none idle, nothing happens.</summary>
    public void CloseOneIdle()
    {
        foreach (var idle in _idle.Values)
            if (idle.TryTakeNewest(out var entry))
            {
                _ = entry.Connection.QuitAsync();
                return;
            }
    }

    private bool IsStale(long idleSince) => _time.GetElapsedTime(idleSince) > _options.IdleTimeout;

    private async Task SweepAsync()
    {
        foreach (var idle in _idle.Values)
            foreach (var stale in idle.TakeOldestWhile(IsStale))
                await stale.QuitAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _sweeper.DisposeAsync().ConfigureAwait(false);
        // All at once: with thousands idle, one QUIT after another (each allowed seconds) would hold the stop for minutes.
        var quits = new List<Task>();
        foreach (var idle in _idle.Values)
            while (idle.TryTakeNewest(out var entry)) quits.Add(entry.Connection.QuitAsync());
        await Task.WhenAll(quits).ConfigureAwait(false);
    }

    /// <summary>
    /// One place's idle connections, oldest first. The sweep takes out only the stale ones: a sweep that emptied
    /// the list and put the rest back would hide them from a delivery meanwhile, which would then open one more
    /// connection than it has slots, and the receiver counts idle sessions too.
    /// </summary>
    private sealed class IdleConnections
    {
        private readonly Lock _lock = new();
        private readonly List<(SmtpClientConnection Connection, long IdleSince)> _entries = [];

        public void Add(SmtpClientConnection connection, long idleSince)
        {
            lock (_lock) _entries.Add((connection, idleSince));
        }

        /// <summary>The connection idle the shortest time: the likeliest to be still open at the other end.</summary>
        public bool TryTakeNewest(out (SmtpClientConnection Connection, long IdleSince) entry)
        {
            lock (_lock)
            {
                if (_entries.Count == 0)
                {
                    entry = default;
                    return false;
                }
                entry = _entries[^1];
                _entries.RemoveAt(_entries.Count - 1);
                return true;
            }
        }

        /// <summary>Takes out the oldest connections as long as <paramref name="stale"/> says so of their idle start.</summary>
        public List<SmtpClientConnection> TakeOldestWhile(Func<long, bool> stale)
        {
            lock (_lock)
            {
                var taken = _entries.TakeWhile(e => stale(e.IdleSince)).Select(e => e.Connection).ToList();
                _entries.RemoveRange(0, taken.Count);
                return taken;
            }
        }
    }
}
