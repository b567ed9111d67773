// indimail's qscheduler as a decision: a fixed number of queues (-s), or a number that grows by one
// when the average load of the queues taking mail passes Load (-d, up to Max) and shrinks by one when
// the newest queue beyond Count has had no load for IdleRetire and the rest, without it, would not
// open it again at once. The Scaler applies the step; this only decides it.
using static System.FormattableString;

namespace Sluice.Scheduling.Scaling;

/// <summary>What setqload changes at run time; the configuration gives the values at start.</summary>
public sealed record QueueSettings(bool Dynamic, int Count, int Max, double Load, TimeSpan IdleRetire)
{
    /// <summary>Why these settings cannot be used, or null.</summary>
    public string? Problem() =>
        Count < 1 ? "count must be at least 1"
        : Max < Count ? $"max ({Max}) must be at least count ({Count})"
        : !(Load > 0 && Load <= 1) ? "load must be more than 0 and at most 1 (slots in use / slots configured)"
        : IdleRetire <= TimeSpan.Zero ? "idle-retire must be longer than zero"
        : null;
}

/// <summary>One queue taking new mail, as the Scaler samples it.</summary>
/// <param name="Idle">How long its load has been zero (zero while it has load).</param>
public readonly record struct QueueSample(int Number, double Load, TimeSpan Idle);

public enum ScaleAction { None, Grow, Retire }

public readonly record struct ScaleStep(ScaleAction Action, int Queue = 0, string Reason = "")
{
    public static readonly ScaleStep None = new(ScaleAction.None);
}

public static class QueueScaling
{
    /// <summary>
    /// A queue's load: the busiest channel's slots in use over its slots (the seed's two ratios, local and remote, one per
    /// channel here). A queue with one channel's slots all taken is fully loaded, however idle its others are: averaging
    /// over all slots would put one saturated channel of two at 0.5, below Load, and a queue that adds no slot for the
    /// mail waiting would be all the Scaler ever saw. Mail waiting for a destination (its DestinationConcurrency or rate,
    /// shared by every queue) takes no slot, so it is no load: another queue would wait for the same destination.
    /// </summary>
    /// <param name="channels">Each channel's slots in use and its Concurrency.</param>
    public static double LoadOf(IEnumerable<(int InUse, int Slots)> channels)
    {
        var load = 0.0;
        foreach (var (inUse, slots) in channels)
            if (slots > 0) load = Math.Max(load, Math.Min(1.0, (double)inUse / slots)); // above 1 only while a reload lowers Concurrency
        return load;
    }

    /// <param name="taking">The queues taking new mail now.</param>
    public static ScaleStep Next(QueueSettings settings, IReadOnlyList<QueueSample> taking)
    {
        var count = taking.Count;
        if (count < settings.Count) return new(ScaleAction.Grow, Reason: $"{count} queues take mail, count is {settings.Count}");
        var highest = taking.Max(q => q.Number);
        var ceiling = settings.Dynamic ? settings.Max : settings.Count;
        if (count > ceiling) return new(ScaleAction.Retire, highest, $"{count} queues take mail, {(settings.Dynamic ? "max" : "count")} is {ceiling}");
        if (!settings.Dynamic) return ScaleStep.None;
        var load = taking.Average(q => q.Load);
        if (count < settings.Max && load >= settings.Load)
            return new(ScaleAction.Grow, Reason: Invariant($"average load {load:0.00} reached {settings.Load:0.00}"));
        // The newest (highest) queue goes first, so the numbers in use stay Start..Start+n-1 as qscheduler's do.
        var newest = taking.MaxBy(q => q.Number);
        if (count <= settings.Count || newest.Idle < settings.IdleRetire) return ScaleStep.None;
        // Hysteresis: a queue that gets no mail while the others are busy (their backlog cannot move to it) stays open,
        // for without it the average would reach Load and open it again at the next sample.
        var remaining = taking.Where(q => q.Number != newest.Number).Average(q => q.Load);
        return remaining >= settings.Load ? ScaleStep.None
            : new(ScaleAction.Retire, newest.Number, Invariant($"no load for {newest.Idle.TotalSeconds:0}s, the others' average load {remaining:0.00}"));
    }
}
