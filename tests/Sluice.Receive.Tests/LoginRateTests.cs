// Smtp.LoginRatePerHour's window slides: a login gets a message back an hour after each one it sent,
// not at the top of the hour, and logins are counted apart.
using Microsoft.Extensions.Time.Testing;

namespace Sluice.Receive.Tests;

public sealed class LoginRateTests
{
    [Fact]
    public void Each_message_frees_its_slot_an_hour_after_it_was_counted()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 8, 3, 0, 0, TimeSpan.Zero));
        var rate = new LoginRate(time);
        Assert.True(rate.TryTake("alice", 2));
        time.Advance(TimeSpan.FromMinutes(30));
        Assert.True(rate.TryTake("Alice", 2));
        Assert.False(rate.TryTake("alice", 2));
        Assert.True(rate.TryTake("bob", 2));
        time.Advance(TimeSpan.FromMinutes(29));
        Assert.False(rate.TryTake("alice", 2));
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(rate.TryTake("alice", 2)); // the first is an hour old
        Assert.False(rate.TryTake("alice", 2));
        Assert.True(rate.TryTake("alice", 0)); // no limit
    }
}
