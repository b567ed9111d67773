// This node's share of the cluster-wide destination limits (IClusterDestinationLimits): slots and pace
// turns are fetched from the queue database ahead of use, off the scheduler's path, and spent by
// the throttle without a round trip. A slot given back by a delivery stays with this node for
// SpareHold: the pool may keep that delivery's connection open idle meanwhile, and the receiver
// counts it as a session, so the slot must not go to another node before the connection has closed.
using Sluice.Queue;

namespace Sluice.Scheduling;

internal sealed class SharedDestinationAllowance : IDisposable
{
    /// <summary>How long after a refusal (every slot held elsewhere) the slot is asked for again, while work waits.</summary>
    private static readonly TimeSpan RefusedRetry = TimeSpan.FromMilliseconds(250);
    /// <summary>While the database cannot be asked (it restarts), a slower retry.</summary>
    private static readonly TimeSpan UnreachableRetry = TimeSpan.FromSeconds(1);

    private sealed class Share
    {
        /// <summary>When each spare slot (held, not in use) was given back, newest last.</summary>
        public readonly List<long> Spares = [];
        public int Turns;
        public bool FetchingSlot, FetchingTurn;
    }

    private readonly IClusterDestinationLimits _limits;
    private readonly TimeProvider _time;
    private readonly Action _announce;
    private readonly Action<string> _log;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Share> _shares = new(StringComparer.OrdinalIgnoreCase);
    private readonly ITimer _sweep;
    private bool _warned;

    /// <param name="announce">Called (outside any lock) when a slot or turn has arrived: work waiting for it may start.</param>
    public SharedDestinationAllowance(IClusterDestinationLimits limits, TimeSpan spareHold, TimeProvider time, Action announce, Action<string> log)
    {
        _limits = limits;
        _time = time;
        _announce = announce;
        _log = log;
        SpareHold = spareHold;
        var period = spareHold > TimeSpan.FromSeconds(2) ? spareHold / 4 : TimeSpan.FromMilliseconds(500);
        _sweep = time.CreateTimer(_ => GiveBackIdleSpares(), null, period, period);
    }

    public TimeSpan SpareHold { get; }

    /// <summary>Spends a slot (and a pace turn when the destination has a rate) if this node has them; else starts fetching them and says no.</summary>
    public bool TryTake(string destination, int concurrency, int ratePerMinute)
    {
        bool slot, turn;
        lock (_lock)
        {
            if (!_shares.TryGetValue(destination, out var share)) _shares[destination] = share = new();
            slot = share.Spares.Count > 0;
            turn = ratePerMinute <= 0 || share.Turns > 0;
            if (slot && turn)
            {
                share.Spares.RemoveAt(share.Spares.Count - 1); // the newest: the likeliest to have a warm connection
                if (ratePerMinute > 0) share.Turns--;
                return true;
            }
            // Start fetching what is missing, unless a fetch of it is under way.
            slot = !slot && !share.FetchingSlot;
            turn = !turn && !share.FetchingTurn;
            share.FetchingSlot |= slot;
            share.FetchingTurn |= turn;
        }
        // Off this stack: the caller holds the throttle's lock, and a fetch ends by announcing capacity.
        if (slot) _ = Task.Run(() => FetchSlotAsync(destination, concurrency));
        if (turn) _ = Task.Run(() => FetchTurnAsync(destination, ratePerMinute));
        return false;
    }

    /// <summary>A delivery ended: its slot becomes a spare this node keeps for <see cref="SpareHold"/>.</summary>
    public void Release(string destination)
    {
        lock (_lock)
        {
            if (!_shares.TryGetValue(destination, out var share)) _shares[destination] = share = new();
            share.Spares.Add(_time.GetTimestamp());
        }
    }

    private Task FetchSlotAsync(string destination, int concurrency) =>
        FetchAsync(destination,
            async () => await _limits.TryTakeSlotAsync(destination, concurrency, CancellationToken.None).ConfigureAwait(false) ? null : RefusedRetry,
            (share, got) =>
            {
                share.FetchingSlot = false;
                if (got) share.Spares.Add(_time.GetTimestamp());
            });

    private Task FetchTurnAsync(string destination, int ratePerMinute) =>
        FetchAsync(destination,
            async () => await _limits.TryTakeTurnAsync(destination, DestinationPace.Interval(ratePerMinute), DestinationPace.Burst(ratePerMinute), CancellationToken.None).ConfigureAwait(false) is var wait && wait > TimeSpan.Zero ? wait : null,
            (share, got) =>
            {
                share.FetchingTurn = false;
                if (got) share.Turns++;
            });

    /// <summary>
    /// Asks the database (<paramref name="ask"/>: null when granted, else how long until asking again), waits that long
    /// when refused, settles the share under the lock, and announces capacity: a slot or turn came, or it is time to ask again.
    /// </summary>
    private async Task FetchAsync(string destination, Func<Task<TimeSpan?>> ask, Action<Share, bool> settle)
    {
        TimeSpan? retry;
        try
        {
            retry = await ask().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or TimeoutException)
        {
            retry = Unreachable(e);
        }
        if (retry is { } wait) await Task.Delay(wait, _time).ConfigureAwait(false);
        lock (_lock) settle(_shares[destination], retry is null);
        _announce();
    }

    private TimeSpan Unreachable(Exception e)
    {
        lock (_lock)
        {
            if (_warned) return UnreachableRetry;
            _warned = true;
        }
        _log($"warning: cluster destination limits: the queue database cannot be asked ({e.Message}); deliveries wait for it");
        return UnreachableRetry;
    }

    private void GiveBackIdleSpares()
    {
        var stale = new List<string>();
        lock (_lock)
        {
            _warned = false;
            foreach (var (destination, share) in _shares)
            {
                while (share.Spares.Count > 0 && _time.GetElapsedTime(share.Spares[0]) > SpareHold)
                {
                    share.Spares.RemoveAt(0);
                    stale.Add(destination);
                }
                if (share.Spares.Count == 0 && share.Turns == 0 && !share.FetchingSlot && !share.FetchingTurn) _shares.Remove(destination);
            }
        }
        foreach (var destination in stale) _ = GiveBackAsync(destination);
    }

    private async Task GiveBackAsync(string destination)
    {
        try
        {
            await _limits.GiveBackSlotAsync(destination, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or TimeoutException)
        {
            // The connection that held it is gone, and the slot with it.
        }
    }

    public void Dispose() => _sweep.Dispose();
}
