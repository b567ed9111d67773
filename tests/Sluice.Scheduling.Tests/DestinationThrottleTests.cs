// The throttle's rules on their own, with a fake clock: slow start, halving on failure, suspension
// that doubles and ends on a timer, and the pace of DestinationRatePerMinute.
using Microsoft.Extensions.Time.Testing;
using Sluice.Core.Configuration;

namespace Sluice.Scheduling.Tests;

public sealed class DestinationThrottleTests : IDisposable
{
    private const string Destination = "mx.example.test:25";
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-23T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly List<string> _log = [];
    private readonly DestinationThrottle _throttle;
    private readonly ChannelOptions _channel = new() { Name = "remote", DestinationConcurrency = 8 };

    public DestinationThrottleTests() => _throttle = new DestinationThrottle(_time, line => { lock (_log) _log.Add(line); });

    private int AcquireAll()
    {
        var n = 0;
        while (_throttle.TryAcquire(Destination, _channel) == Admission.Granted) n++;
        return n;
    }

    [Fact]
    public void A_destination_starts_with_a_small_window_that_grows_by_one_per_success_up_to_its_limit()
    {
        Assert.Equal(DestinationThrottle.InitialWindow, AcquireAll());
        _throttle.Release(Destination, _channel, DestinationOutcome.Reached);
        Assert.Equal(2, AcquireAll()); // the freed slot and one more
        for (int i = 0; i < 10; i++)
        {
            _throttle.Release(Destination, _channel, DestinationOutcome.Reached);
            AcquireAll();
        }
        Assert.Equal(_channel.DestinationConcurrency, _throttle.InUse(Destination));
    }

    [Fact]
    public void The_first_window_is_the_channels_InitialDestinationConcurrency_within_its_limit()
    {
        var wide = new ChannelOptions { Name = "bulk", DestinationConcurrency = 12, InitialDestinationConcurrency = 10 };
        var n = 0;
        while (_throttle.TryAcquire("wide.example.test", wide) == Admission.Granted) n++;
        Assert.Equal(10, n);
        var narrow = new ChannelOptions { Name = "slow", DestinationConcurrency = 3, InitialDestinationConcurrency = 10 };
        n = 0;
        while (_throttle.TryAcquire("narrow.example.test", narrow) == Admission.Granted) n++;
        Assert.Equal(3, n);
    }

    [Fact]
    public void A_failure_halves_the_window_and_only_a_success_with_the_window_full_grows_it()
    {
        Assert.Equal(Admission.Granted, _throttle.TryAcquire(Destination, _channel));
        _throttle.Release(Destination, _channel, DestinationOutcome.Unavailable, "421 busy");
        Assert.Equal(2, _throttle.Window(Destination));
        Assert.Equal(2, AcquireAll());
        _throttle.Release(Destination, _channel, DestinationOutcome.Reached);
        Assert.Equal(3, _throttle.Window(Destination));
        Assert.Equal(2, AcquireAll());
        _throttle.Release(Destination, _channel, DestinationOutcome.Reached);
        _throttle.Release(Destination, _channel, DestinationOutcome.Reached); // two of a window of four in use: nothing learned
        Assert.Equal(4, _throttle.Window(Destination));
        Assert.Equal(1, _throttle.InUse(Destination));
    }

    [Fact]
    public void Repeated_failures_suspend_the_destination_for_a_minute_then_twice_as_long_until_a_success()
    {
        for (int i = 0; i < DestinationThrottle.FailuresBeforeSuspension; i++)
        {
            Assert.Equal(Admission.Granted, _throttle.TryAcquire(Destination, _channel));
            _throttle.Release(Destination, _channel, DestinationOutcome.Unavailable, "connect failed: Connection refused");
        }
        Assert.Contains($"destination {Destination}: suspended for 60s after 5 failures (last: connect failed: Connection refused)", _log);
        Assert.Equal(Admission.Suspended, _throttle.TryAcquire(Destination, _channel));

        var woken = 0;
        _throttle.CapacityAvailable += _ => woken++;
        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(Admission.Suspended, _throttle.TryAcquire(Destination, _channel));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Contains($"destination {Destination}: resumed", _log);
        Assert.Equal(1, woken);

        // Resumed on probation: one connection, and one more failure suspends it again, for longer.
        Assert.Equal(1, AcquireAll());
        _throttle.Release(Destination, _channel, DestinationOutcome.Unavailable, "421 still busy");
        Assert.Contains($"destination {Destination}: suspended for 120s after 6 failures (last: 421 still busy)", _log);
        _time.Advance(TimeSpan.FromSeconds(120));
        Assert.Equal(2, _log.Count(l => l.EndsWith(": resumed", StringComparison.Ordinal)));

        // A success forgets the failures: the next suspension is a minute again.
        Assert.Equal(1, AcquireAll());
        _throttle.Release(Destination, _channel, DestinationOutcome.Reached);
        for (int i = 0; i < DestinationThrottle.FailuresBeforeSuspension; i++)
        {
            Assert.Equal(Admission.Granted, _throttle.TryAcquire(Destination, _channel));
            _throttle.Release(Destination, _channel, DestinationOutcome.Unavailable, "refused");
        }
        Assert.Equal(2, _log.Count(l => l.Contains("suspended for 60s after 5 failures", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_flush_lifts_a_suspension_at_once()
    {
        for (int i = 0; i < DestinationThrottle.FailuresBeforeSuspension; i++)
        {
            Assert.Equal(Admission.Granted, _throttle.TryAcquire(Destination, _channel));
            _throttle.Release(Destination, _channel, DestinationOutcome.Unavailable, "refused");
        }
        Assert.True(_throttle.IsSuspended(Destination));
        _throttle.ResumeAll();
        Assert.Contains($"destination {Destination}: resumed", _log);
        Assert.Equal(Admission.Granted, _throttle.TryAcquire(Destination, _channel));
    }

    [Fact]
    public void Suspensions_stop_doubling_at_ten_minutes()
    {
        var lengths = new List<string>();
        for (int round = 0; round < 6; round++)
        {
            do
            {
                Assert.Equal(Admission.Granted, _throttle.TryAcquire(Destination, _channel));
                _throttle.Release(Destination, _channel, DestinationOutcome.Unavailable, "refused");
            }
            while (!_throttle.IsSuspended(Destination));
            lengths.Add(_log[^1].Split(' ')[4]);
            _time.Advance(DestinationThrottle.LongestSuspension);
        }
        Assert.Equal(["60s", "120s", "240s", "480s", "600s", "600s"], lengths);
    }

    [Fact]
    public void The_rate_is_paced_with_a_burst_of_one_seconds_worth_and_a_timer_for_the_next_turn()
    {
        var channel = new ChannelOptions { Name = "bulk", DestinationConcurrency = 5, DestinationRatePerMinute = 600 };
        // Each delivery done at once, so only the pace holds them back.
        int Deliver()
        {
            var n = 0;
            for (; _throttle.TryAcquire(Destination, channel) == Admission.Granted; n++)
                _throttle.Release(Destination, channel, DestinationOutcome.Reached);
            return n;
        }
        Assert.Equal(10, Deliver());
        var woken = 0;
        _throttle.CapacityAvailable += _ => woken++;
        _time.Advance(TimeSpan.FromMilliseconds(99));
        Assert.Equal(0, woken);
        Assert.Equal(0, Deliver());
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, woken); // the timer for the next turn
        Assert.Equal(1, Deliver());

        // Over a minute of asking every 50 ms: one per 100 ms, no more.
        var delivered = 0;
        for (int ms = 0; ms < 60_000; ms += 50)
        {
            _time.Advance(TimeSpan.FromMilliseconds(50));
            delivered += Deliver();
        }
        Assert.Equal(600, delivered);
    }

    [Fact]
    public void An_idle_destination_with_nothing_to_remember_is_forgotten_and_starts_slowly_again()
    {
        var channel = new ChannelOptions { Name = "remote", DestinationConcurrency = 20 };
        for (int i = 0; i < 5; i++) Assert.Equal(Admission.Granted, _throttle.TryAcquire(Destination, channel));
        for (int i = 0; i < 5; i++) _throttle.Release(Destination, channel, DestinationOutcome.Reached);
        Assert.Equal(0, _throttle.InUse(Destination));
        Assert.Equal(DestinationThrottle.InitialWindow, _throttle.Window(Destination));
    }

    public void Dispose() => _throttle.Dispose();
}
