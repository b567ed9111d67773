// The far ends of a cluster test: one SMTP sink per destination domain (each its own route, so its own
// destination), shared by every node. Each counts the sessions open at once at that destination (the
// most ever: what a destination limit must bound) and every message by its Message-ID, so duplicates
// show and a test can await the distinct count instead of sleeping.
using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Sluice.Testing;

namespace Sluice.EndToEnd.Postgres;

internal sealed partial class DestinationSinks : IAsyncDisposable
{
    private readonly Dictionary<string, SmtpSink> _sinks;
    private readonly ConcurrentDictionary<string, int> _byMessageId = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly List<(int Count, TaskCompletionSource Done)> _waiters = [];
    private int _received;

    public DestinationSinks(IEnumerable<string> domains)
    {
        _sinks = domains.ToDictionary(d => d, _ => new SmtpSink(), StringComparer.OrdinalIgnoreCase);
        foreach (var sink in _sinks.Values) sink.BeforeDataReply = Count;
    }

    public IReadOnlyCollection<string> Domains => _sinks.Keys;

    /// <summary>Routes (the config's "Routes" section) sending each domain to its own sink.</summary>
    public Dictionary<string, string> Routes => _sinks.ToDictionary(s => s.Key, s => $"127.0.0.1:{s.Value.Port}");

    /// <summary>The most sessions ever open at once at the destination <paramref name="domain"/>, from every node together.</summary>
    public int MaxSessions(string domain) => _sinks[domain].Sessions.Max;

    /// <summary>Messages received in all, duplicates included.</summary>
    public int Received => Volatile.Read(ref _received);

    /// <summary>How many times each Message-ID arrived.</summary>
    public IReadOnlyDictionary<string, int> ByMessageId => _byMessageId;

    /// <summary>Completes once <paramref name="count"/> distinct Message-IDs have arrived.</summary>
    public async Task WaitForDistinctAsync(int count, TimeSpan timeout)
    {
        TaskCompletionSource done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_byMessageId.Count >= count) return;
            _waiters.Add((count, done));
        }
        try
        {
            await done.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"the sinks hold {_byMessageId.Count} distinct messages, expected {count} within {timeout}");
        }
    }

    /// <summary>Counted before the 250 is sent: a node killed before reading it delivers again, and that shows as a duplicate.</summary>
    private Task Count(SmtpSink.Received message)
    {
        var id = MessageIdHeader().Match(message.Data) is { Success: true } m ? m.Groups[1].Value : "(none)";
        Interlocked.Increment(ref _received);
        lock (_lock)
        {
            _byMessageId.AddOrUpdate(id, 1, (_, n) => n + 1);
            foreach (var w in _waiters.Where(w => _byMessageId.Count >= w.Count).ToList())
            {
                w.Done.TrySetResult();
                _waiters.Remove(w);
            }
        }
        return Task.CompletedTask;
    }

    [GeneratedRegex(@"^Message-ID:\s*(\S+)", RegexOptions.Multiline | RegexOptions.IgnoreCase)]
    private static partial Regex MessageIdHeader();

    public async ValueTask DisposeAsync()
    {
        foreach (var sink in _sinks.Values) await sink.DisposeAsync();
    }
}
