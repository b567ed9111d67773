// What every queue's scheduler asks before it sends to a destination (a domain, or a route's
// host:port), shared across queues so a receiver is protected whichever queue mail sits in.
using Sluice.Core.Configuration;
using Sluice.Queue;

namespace Sluice.Scheduling;

public sealed class DestinationThrottle : IDisposable
{
    /// <summary>Connections a destination gets at first by default (Channels[].InitialDestinationConcurrency), if its limit allows.</summary>
    public const int InitialWindow = 5;
    /// <summary>Destination failures in a row, with no success between, after which it is suspended.</summary>
    public const int FailuresBeforeSuspension = 5;
    public static readonly TimeSpan FirstSuspension = TimeSpan.FromMinutes(1);
    /// <summary>Each suspension without a success between is twice the last, up to this.</summary>
    public static readonly TimeSpan LongestSuspension = TimeSpan.FromMinutes(10);

    private readonly Dictionary<string, DestinationState> _destinations = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _suspended = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>The channel priorities that have asked for a destination: the levels capacity is offered at.</summary>
    private readonly SortedSet<int> _priorities = [];
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly Action<string> _log;
    private readonly ITimer _wake;
    private DateTimeOffset _wakeAt = DateTimeOffset.MaxValue;
    private int _offers;

    /// <summary>This node's share of limits held across the nodes of one queue database; null when the node is alone.</summary>
    private readonly SharedDestinationAllowance? _shared;

    /// <param name="shared">The cluster-wide limits, when other nodes share the queue store.</param>
    /// <param name="spareHold">How long a connection may stay open idle after its delivery (the pool's idle time, with margin).</param>
    public DestinationThrottle(TimeProvider time, Action<string> log, IClusterDestinationLimits? shared = null, TimeSpan spareHold = default)
    {
        _time = time;
        _log = log;
        _wake = time.CreateTimer(_ => Wake(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        if (shared is not null) _shared = new SharedDestinationAllowance(shared, spareHold, time, Announce, log);
    }

    /// <summary>
    /// Raised (outside any lock) when a destination may take more: a slot given back, a rate turn due, a
    /// suspension over. The argument is a priority floor: a listener starts work of channels at or above it.
    /// See <see cref="Announce"/> for the order.
    /// </summary>
    public event Action<int>? CapacityAvailable;

    public Admission TryAcquire(string destination, ChannelOptions channel)
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            if (!_destinations.TryGetValue(destination, out var state)) _destinations[destination] = state = new(channel.InitialDestinationConcurrency);
            _priorities.Add(channel.Priority);
            if (state.SuspendedUntil <= now) Resume(destination, state);
            // With cluster-wide limits the pace is the cluster's, kept by the database: no second, local one.
            var admission = state.Admit(now, channel.DestinationConcurrency, _shared is null ? channel.DestinationRatePerMinute : 0, out var wait);
            if (wait > TimeSpan.Zero) WakeAt(now + wait, now);
            if (admission == Admission.Granted && _shared is not null
                && !_shared.TryTake(destination, channel.DestinationConcurrency, channel.DestinationRatePerMinute))
            {
                state.Withdraw();
                return Admission.Busy;
            }
            return admission;
        }
    }

    /// <summary>Gives back a slot taken by <see cref="TryAcquire"/>, with what the delivery learned about the destination.</summary>
    /// <param name="error">For <see cref="DestinationOutcome.Unavailable"/>: the reply or reason, for the log.</param>
    public void Release(string destination, ChannelOptions channel, DestinationOutcome outcome, string error = "")
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            if (!_destinations.TryGetValue(destination, out var state)) throw new InvalidOperationException($"destination {destination}: released but never acquired");
            if (outcome == DestinationOutcome.Reached && state.Succeeded(channel.DestinationConcurrency))
            {
                _suspended.Remove(destination);
                _log($"destination {destination}: resumed");
            }
            else if (outcome == DestinationOutcome.Unavailable && state.Failed(now, channel.DestinationConcurrency, error) is { } suspension)
            {
                _suspended.Add(destination);
                WakeAt(now + suspension, now);
                _log($"destination {destination}: suspended for {suspension.TotalSeconds:0}s after {state.Failures} failures (last: {error})");
            }
            state.Release();
            _shared?.Release(destination);
            if (state.IsForgettable(now)) _destinations.Remove(destination);
        }
        Announce();
    }

    /// <summary>Why work for a suspended destination is deferred, as the text of its deferral.</summary>
    public string SuspensionNotice(string destination)
    {
        lock (_lock)
        {
            return _destinations.TryGetValue(destination, out var s) && s.SuspendedUntil is { } until
                ? $"451 4.4.1 delivery to {destination} suspended until {until:HH:mm:ss}Z after {s.Failures} failures (last: {s.LastError})"
                : $"451 4.4.1 delivery to {destination} suspended";
        }
    }

    /// <summary>Ends every suspension now, as `postqueue -f` does for Postfix's dead destinations (`sluice queue flush`).</summary>
    public void ResumeAll()
    {
        lock (_lock)
            foreach (var destination in _suspended.ToList()) Resume(destination, _destinations[destination]);
        Announce();
    }

    public int InUse(string destination)
    {
        lock (_lock) return _destinations.GetValueOrDefault(destination)?.InUse ?? 0;
    }

    /// <summary>The connections <paramref name="destination"/> may have now (slow start and back-off), before its channel's limit.</summary>
    public int Window(string destination)
    {
        lock (_lock) return _destinations.GetValueOrDefault(destination)?.Window ?? InitialWindow;
    }

    public bool IsSuspended(string destination)
    {
        lock (_lock) return _destinations.GetValueOrDefault(destination)?.SuspendedUntil is not null;
    }

    /// <summary>
    /// Offers capacity to every listener (one per queue) once per priority level that has asked, highest
    /// first, so a higher-priority channel in any queue starts before a lower one in another; the last
    /// offer (int.MinValue) is for all. The listener asked first moves on each time: no queue always wins.
    /// </summary>
    private void Announce()
    {
        if (CapacityAvailable?.GetInvocationList() is not { } listeners) return;
        int[] floors;
        int first;
        lock (_lock)
        {
            floors = [.. _priorities.Reverse().SkipLast(1), int.MinValue];
            first = _offers = (_offers + 1) % listeners.Length;
        }
        foreach (var floor in floors)
            for (int i = 0; i < listeners.Length; i++) ((Action<int>)listeners[(first + i) % listeners.Length])(floor);
    }

    private void Resume(string destination, DestinationState state)
    {
        state.Resume();
        _suspended.Remove(destination);
        _log($"destination {destination}: resumed");
    }

    /// <summary>Arms the one timer for the earliest time anything may change; caller holds the lock.</summary>
    private void WakeAt(DateTimeOffset at, DateTimeOffset now)
    {
        if (at >= _wakeAt) return;
        _wakeAt = at;
        // Whole milliseconds, rounded up and at least one: timers never fire early, nor on this stack.
        var ms = Math.Max(1, (long)Math.Ceiling((at - now).TotalMilliseconds));
        _wake.Change(TimeSpan.FromMilliseconds(ms), Timeout.InfiniteTimeSpan);
    }

    private void Wake()
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            _wakeAt = DateTimeOffset.MaxValue;
            foreach (var destination in _suspended.ToList())
            {
                var state = _destinations[destination];
                if (state.SuspendedUntil <= now) Resume(destination, state);
                else WakeAt(state.SuspendedUntil!.Value, now);
            }
        }
        Announce();
    }

    /// <summary>The destinations with the most connections in use, then the most failures: what `sluice top` lists.</summary>
    public IReadOnlyList<Status.DestinationStatus> Busiest(int count)
    {
        lock (_lock)
            return [.. _destinations.OrderByDescending(d => d.Value.InUse).ThenByDescending(d => d.Value.Failures).ThenBy(d => d.Key, StringComparer.Ordinal)
                .Take(count).Select(d => new Status.DestinationStatus(d.Key, d.Value.InUse, d.Value.Window, d.Value.Failures, d.Value.SuspendedUntil is not null, d.Value.LastError, d.Value.Finished))];
    }

    public void Dispose()
    {
        _wake.Dispose();
        _shared?.Dispose();
    }
}
