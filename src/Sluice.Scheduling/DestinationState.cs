// What the throttle knows about one destination (Postfix qmgr's per-destination feedback):
// connections in use, the slow-start window, failures in a row, a suspension, and the pace.
namespace Sluice.Scheduling;

internal sealed class DestinationState(int initialWindow)
{
    public int InUse { get; private set; }
    /// <summary>Connections allowed now: starts small, one more per success, halved per failure; never above the channel's limit.</summary>
    public int Window { get; private set; } = initialWindow;
    /// <summary>Destination failures since the last success.</summary>
    public int Failures { get; private set; }
    public string LastError { get; private set; } = "";
    public DateTimeOffset? SuspendedUntil { get; private set; }
    private TimeSpan _nextSuspension = DestinationThrottle.FirstSuspension;
    private DestinationPace? _pace;

    public Admission Admit(DateTimeOffset now, int concurrency, int ratePerMinute, out TimeSpan wait)
    {
        wait = TimeSpan.Zero;
        if (SuspendedUntil is not null) return Admission.Suspended;
        if (InUse >= Math.Min(Window, concurrency)) return Admission.Busy;
        if (ratePerMinute > 0 && !(_pace ??= new()).TryTake(now, ratePerMinute, out wait)) return Admission.Busy;
        InUse++;
        return Admission.Granted;
    }

    /// <summary>Takes back a slot <see cref="Admit"/> granted that the delivery did not get to use (the cluster refused it).</summary>
    public void Withdraw() => InUse--;

    /// <summary>Deliveries (jobs) that ended here while the destination was remembered, whatever their outcome.</summary>
    public long Finished { get; private set; }

    public void Release()
    {
        InUse--;
        Finished++;
    }

    /// <summary>
    /// Call before <see cref="Release"/>. A window in full use gets one more connection, up to the
    /// limit (one in use at a time learns nothing); returns true when this ends a suspension.
    /// </summary>
    public bool Succeeded(int concurrency)
    {
        Failures = 0;
        _nextSuspension = DestinationThrottle.FirstSuspension;
        if (InUse >= Window && Window < concurrency) Window++;
        var wasSuspended = SuspendedUntil is not null;
        SuspendedUntil = null;
        return wasSuspended;
    }

    /// <summary>Halves the window; returns how long the destination is now suspended for, if this failure suspends it.</summary>
    public TimeSpan? Failed(DateTimeOffset now, int concurrency, string error)
    {
        Failures++;
        LastError = error;
        Window = Math.Max(1, Math.Min(Window, concurrency) / 2);
        if (SuspendedUntil is not null || Failures < DestinationThrottle.FailuresBeforeSuspension) return null;
        var suspension = _nextSuspension;
        SuspendedUntil = now + suspension;
        _nextSuspension = suspension * 2 < DestinationThrottle.LongestSuspension ? suspension * 2 : DestinationThrottle.LongestSuspension;
        return suspension;
    }

    /// <summary>The suspension is over: one connection to probe it; one more failure suspends it again, for longer.</summary>
    public void Resume()
    {
        SuspendedUntil = null;
        Window = 1;
    }

    /// <summary>
    /// Idle with no failure or pace to remember: the destination may be forgotten, and the next
    /// burst to it starts slowly again (as Postfix frees a destination whose queue has emptied).
    /// </summary>
    public bool IsForgettable(DateTimeOffset now) =>
        InUse == 0 && Failures == 0 && SuspendedUntil is null && (_pace is null || _pace.IsRested(now));
}
