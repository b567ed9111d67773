// The descriptors SMTP sessions share both ways: outbound takes what inbound does not use, each side
// keeps its floor, and a delivery past the budget waits for a slot rather than failing.
using Sluice.Core.IO;

namespace Sluice.Core.Tests;

public sealed class SessionBudgetTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static void TakeOutbound(SessionBudget budget, int n)
    {
        for (var i = 0; i < n; i++) Assert.True(budget.TryTakeOutbound(), $"outbound slot {i + 1} of {n}");
    }

    [Fact]
    public void Outbound_takes_all_but_the_inbound_floor_and_that_floor_still_takes_clients()
    {
        var budget = new SessionBudget(1000, inboundFloor: 100, outboundFloor: 50);
        TakeOutbound(budget, 900);
        Assert.False(budget.TryTakeOutbound());
        for (var i = 0; i < 100; i++) Assert.True(budget.TryTakeInbound(), $"inbound session {i + 1} of the floor");
        Assert.False(budget.TryTakeInbound());
        Assert.Equal((100, 900), (budget.Inbound, budget.Outbound));
    }

    [Fact]
    public void Inbound_takes_all_but_the_outbound_floor_and_delivery_still_gets_that_floor()
    {
        var budget = new SessionBudget(1000, inboundFloor: 100, outboundFloor: 50);
        for (var i = 0; i < 950; i++) Assert.True(budget.TryTakeInbound());
        Assert.False(budget.TryTakeInbound());
        TakeOutbound(budget, 50);
        Assert.False(budget.TryTakeOutbound());
    }

    [Fact]
    public void Inbound_sessions_above_the_floor_shrink_what_outbound_may_take()
    {
        var budget = new SessionBudget(1000, inboundFloor: 100, outboundFloor: 50);
        for (var i = 0; i < 300; i++) Assert.True(budget.TryTakeInbound());
        TakeOutbound(budget, 700);
        Assert.False(budget.TryTakeOutbound());
        Assert.False(budget.TryTakeInbound());
    }

    [Fact]
    public async Task A_waiting_delivery_gets_the_slot_an_inbound_session_gives_back()
    {
        var budget = new SessionBudget(10, inboundFloor: 2, outboundFloor: 2);
        for (var i = 0; i < 5; i++) Assert.True(budget.TryTakeInbound());
        TakeOutbound(budget, 5);
        var first = budget.TakeOutboundAsync(CancellationToken.None);
        var second = budget.TakeOutboundAsync(CancellationToken.None);
        Assert.False(first.IsCompleted);
        Assert.False(budget.TryTakeOutbound()); // no overtaking the deliveries that wait

        budget.ReleaseInbound();
        await first.WaitAsync(Patience);
        Assert.False(second.IsCompleted);
        budget.ReleaseOutbound();
        await second.WaitAsync(Patience);
        Assert.Equal((4, 6), (budget.Inbound, budget.Outbound));
    }

    [Fact]
    public void A_client_turned_away_has_an_idle_outbound_connection_closed_for_the_next()
    {
        var closed = 0;
        var budget = new SessionBudget(10, inboundFloor: 2, outboundFloor: 2) { CloseAnIdleConnection = () => closed++ };
        TakeOutbound(budget, 8);
        Assert.True(budget.TryTakeInbound());
        Assert.True(budget.TryTakeInbound());
        Assert.Equal(0, closed);
        Assert.False(budget.TryTakeInbound());
        Assert.Equal(1, closed);
        budget.ReleaseOutbound(); // the idle connection, once closed
        Assert.True(budget.TryTakeInbound());
    }

    [Fact]
    public async Task A_cancelled_wait_holds_no_slot()
    {
        var budget = SessionBudget.OutboundOnly(1);
        TakeOutbound(budget, 1);
        using var cancel = new CancellationTokenSource();
        var waiting = budget.TakeOutboundAsync(cancel.Token);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(Patience));

        budget.ReleaseOutbound();
        Assert.Equal(0, budget.Outbound);
        Assert.True(budget.TryTakeOutbound());
    }

    [Theory]
    [InlineData(19_500, 100)]
    [InlineData(5_000, 100)]
    [InlineData(200, 50)]
    [InlineData(500_000, 2_500)]
    public void The_floor_is_half_a_percent_at_least_100_and_at_most_a_quarter(int total, int floor) =>
        Assert.Equal(floor, SessionBudget.FloorFor(total));
}
