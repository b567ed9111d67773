// A destination that turns us away (421 greeting, or a closed port) is backed off, suspended after
// repeated failures without being connected to, and recovers once it works again.
using Sluice.Core.Mail;

namespace Sluice.Scheduling.Tests;

public sealed class DestinationBackoffTests : SchedulerHarness
{
    private const int Messages = 10;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_destination_that_turns_us_away_is_suspended_then_recovers(bool closedPort)
    {
        var options = DefaultOptions(TimeSpan.FromDays(1));
        options.Retry.Schedule = [TimeSpan.FromMinutes(2)]; // retries come due after the first suspension (1 minute) is over
        if (closedPort) Sink.StopListening();
        else Sink.Greeting = "421 4.3.2 sink busy";
        Open(options, 1);
        var messages = await Task.WhenAll(Enumerable.Range(0, Messages).Select(n => Accept("sender@localhost", $"u{n}@d{n % 3}.test")));
        Deliver();
        var destination = $"127.0.0.1:{Sink.Port}";

        var suspended = await Lines.WaitForAsync(
            $"destination {destination}: suspended for 60s after {DestinationThrottle.FailuresBeforeSuspension} failures (last: ");
        Assert.Contains(closedPort ? "refused" : "greeted with 421 4.3.2 sink busy", suspended, StringComparison.Ordinal);
        var deferrals = await Lines.WaitForCountAsync("deferral:", Messages);
        // The window shrank to one at each failure in turn, so only the failures were tried; the rest waited for no connection.
        Assert.Equal(Messages - DestinationThrottle.FailuresBeforeSuspension, deferrals.Count(l => l.Contains($"delivery to {destination} suspended", StringComparison.Ordinal)));
        Assert.Equal(closedPort ? 0 : DestinationThrottle.FailuresBeforeSuspension, Sink.Sessions.Total);
        Assert.Equal(1, Throttle.Window(destination));

        if (closedPort) Sink.StartListening();
        else Sink.Greeting = "220 sink.test ESMTP";
        Time.Advance(TimeSpan.FromSeconds(61));
        await Lines.WaitForAsync($"destination {destination}: resumed");
        Assert.Equal(Messages, Lines.Count("deferral:")); // nothing came due while suspended

        Time.Advance(TimeSpan.FromMinutes(2.5));
        await Sink.WaitForCountAsync(Messages, TimeSpan.FromSeconds(10));
        foreach (var m in messages) await Lines.WaitForAsync($"end msg {m.Id}");
        Assert.False(Throttle.IsSuspended(destination));
    }

    [Fact]
    public async Task A_421_reply_in_the_middle_of_a_session_counts_against_the_destination_too()
    {
        Start(TimeSpan.FromDays(1));
        Sink.DataReply = _ => "421 4.3.2 shutting down";
        var m = await Accept("sender@localhost", "u@d.test");
        await Lines.WaitForAsync("deferral: 127.0.0.1");
        await Lines.WaitForAsync("remote 0/");
        var destination = $"127.0.0.1:{Sink.Port}";
        Assert.Equal(DestinationThrottle.InitialWindow / 2, Throttle.Window(destination));
        Assert.Contains("421 4.3.2 shutting down", m.States[0].LastError, StringComparison.Ordinal);
    }
}
