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
    public void A_queue_with_one_channel_saturated_is_fully_loaded_however_idle_its_other_channels_are()
    {
        Assert.Equal(1.0, QueueScaling.LoadOf([(4, 4), (0, 4)]));   // remote all in use, local idle: not (4+0)/(4+4)
        Assert.Equal(0.25, QueueScaling.LoadOf([(1, 4), (16, 64)]));
        Assert.Equal(1.0, QueueScaling.LoadOf([(5, 4)]));           // a reload lowered Concurrency below the slots in use
        Assert.Equal(0.0, QueueScaling.LoadOf([(0, 4), (0, 64)]));
    }

    [Fact]
    public void One_saturated_channel_and_one_idle_grows_once_and_then_neither_retires_nor_flaps()
    {
        // The case: queue1's remote channel has every slot busy with its own backlog, its local channel is
        // idle, and no new mail arrives, so a queue opened beside it gets none and stays at load 0.
        var settings = new QueueSettings(Dynamic: true, Count: 1, Max: 4, Load: 0.7, IdleRetire: TimeSpan.FromSeconds(1));
        var interval = TimeSpan.FromMilliseconds(200);
        var saturated = QueueScaling.LoadOf([(4, 4), (0, 4)]);
        var opened = new Dictionary<int, TimeSpan>(); // queue → when it opened
        var steps = new List<ScaleAction>();
        for (var now = TimeSpan.Zero; now < 20 * settings.IdleRetire; now += interval)
        {
            List<QueueSample> taking = [new(1, saturated, TimeSpan.Zero), .. opened.Select(q => new QueueSample(q.Key, 0, now - q.Value))];
            var step = QueueScaling.Next(settings, taking);
            steps.Add(step.Action);
            if (step.Action == ScaleAction.Grow) opened.Add(taking.Max(q => q.Number) + 1, now);
            else if (step.Action == ScaleAction.Retire) opened.Remove(step.Queue);
        }
        Assert.Equal(ScaleAction.Grow, steps[0]);
        Assert.All(steps.Skip(1), a => Assert.Equal(ScaleAction.None, a));
        Assert.Equal([2], opened.Keys);

        // Once queue1's backlog eases below Load, the idle queue2 goes.
        var eased = QueueScaling.Next(settings, [new(1, QueueScaling.LoadOf([(2, 4), (0, 4)]), TimeSpan.Zero), new(2, 0, TimeSpan.FromSeconds(30))]);
        Assert.Equal((ScaleAction.Retire, 2), (eased.Action, eased.Queue));
    }

    [Fact]
    public void An_idle_queue_does_not_retire_while_the_others_average_would_open_it_again()
    {
        var settings = Dynamic with { Max = 4 };
        Assert.Equal(ScaleAction.None, QueueScaling.Next(settings, [Busy(1, 0.8), Busy(2, 0.7), Idle(3, TimeSpan.FromHours(1))]).Action);
        var step = QueueScaling.Next(settings, [Busy(1, 0.8), Busy(2, 0.5), Idle(3, TimeSpan.FromHours(1))]);
        Assert.Equal((ScaleAction.Retire, 3), (step.Action, step.Queue));
        Assert.Contains("the others' average load 0.65", step.Reason, StringComparison.Ordinal);
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
