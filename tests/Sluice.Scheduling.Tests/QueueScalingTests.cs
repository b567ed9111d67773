// The Scaler's decision (indimail's qscheduler -s / -d) on sampled queue loads.
using Sluice.Scheduling.Scaling;

namespace Sluice.Scheduling.Tests;

public sealed class QueueScalingTests
{
    private static readonly QueueSettings Dynamic = new(Dynamic: true, Count: 1, Max: 3, Load: 0.7, IdleRetire: TimeSpan.FromMinutes(5));

    private static QueueSample Busy(int n, double load) => new(n, load, TimeSpan.Zero);

    private static QueueSample Idle(int n, TimeSpan idle) => new(n, 0, idle);

    [Fact]
    public void A_dynamic_set_grows_when_the_average_load_reaches_the_threshold_and_not_before()
    {
        Assert.Equal(ScaleAction.None, QueueScaling.Next(Dynamic, [Busy(1, 0.69)]).Action);
        Assert.Equal(ScaleAction.Grow, QueueScaling.Next(Dynamic, [Busy(1, 0.7)]).Action);
        Assert.Equal(ScaleAction.None, QueueScaling.Next(Dynamic, [Busy(1, 1), Busy(2, 0.2)]).Action);
    }

    [Fact]
    public void A_dynamic_set_stops_growing_at_max()
    {
        Assert.Equal(ScaleAction.None, QueueScaling.Next(Dynamic, [Busy(1, 1), Busy(2, 1), Busy(3, 1)]).Action);
    }

    [Fact]
    public void The_highest_queue_idle_for_IdleRetire_beyond_count_retires_but_never_below_count()
    {
        var step = QueueScaling.Next(Dynamic, [Idle(1, TimeSpan.FromHours(1)), Idle(2, TimeSpan.FromMinutes(5)), Idle(3, TimeSpan.FromMinutes(6))]);
        Assert.Equal((ScaleAction.Retire, 3), (step.Action, step.Queue));
        Assert.Equal(ScaleAction.None, QueueScaling.Next(Dynamic, [Idle(1, TimeSpan.FromHours(1))]).Action);
        Assert.Equal(ScaleAction.None, QueueScaling.Next(Dynamic, [Idle(1, TimeSpan.FromHours(1)), Idle(2, TimeSpan.FromMinutes(4))]).Action);
    }

    [Fact]
    public void A_fixed_set_keeps_exactly_count_whatever_the_load()
    {
        var fixedTwo = Dynamic with { Dynamic = false, Count = 2 };
        Assert.Equal(ScaleAction.Grow, QueueScaling.Next(fixedTwo, [Busy(1, 0)]).Action);
        Assert.Equal(ScaleAction.None, QueueScaling.Next(fixedTwo, [Busy(1, 1), Busy(2, 1)]).Action);
        var step = QueueScaling.Next(fixedTwo, [Busy(1, 1), Busy(2, 1), Busy(4, 0)]);
        Assert.Equal((ScaleAction.Retire, 4), (step.Action, step.Queue));
    }

    [Fact]
    public void Settings_that_cannot_work_are_refused_with_the_reason()
    {
        Assert.Null(Dynamic.Problem());
        Assert.Contains("max (1) must be at least count (2)", (Dynamic with { Count = 2, Max = 1 }).Problem());
        Assert.Contains("load", (Dynamic with { Load = 1.5 }).Problem());
        Assert.Contains("count", (Dynamic with { Count = 0 }).Problem());
    }
}
