// DestinationRatePerMinute as a pace on the injected clock (GCRA, a token bucket kept as one
// time): messages 60s/rate apart, with a burst of one second's worth so no minute passes the rate by ~2 %.
namespace Sluice.Scheduling;

internal sealed class DestinationPace
{
    /// <summary>When the bucket is full again; the next turn may be taken up to a burst before it.</summary>
    private DateTimeOffset _full = DateTimeOffset.MinValue;

    /// <summary>At least one, else one second's worth of messages.</summary>
    public static int Burst(int ratePerMinute) => Math.Max(1, ratePerMinute / 60);

    public static TimeSpan Interval(int ratePerMinute) => TimeSpan.FromTicks((TimeSpan.TicksPerMinute + ratePerMinute - 1) / ratePerMinute);

    /// <summary>Takes one message's turn now, or says how long until there is one.</summary>
    public bool TryTake(DateTimeOffset now, int ratePerMinute, out TimeSpan wait)
    {
        var interval = Interval(ratePerMinute);
        var full = _full > now ? _full : now;
        var turnAt = full - (interval * (Burst(ratePerMinute) - 1));
        if (now < turnAt)
        {
            wait = turnAt - now;
            return false;
        }
        _full = full + interval;
        wait = TimeSpan.Zero;
        return true;
    }

    /// <summary>True when a burst is available again, i.e. nothing is owed and forgetting the pace changes nothing.</summary>
    public bool IsRested(DateTimeOffset now) => _full <= now;
}
