// Channels[].Priority under contention for one destination's slots, in one queue and across queues,
// and the fairness that goes with it: equal priorities take turns, a full channel holds up no other.
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Testing;

namespace Sluice.Scheduling.Tests;

public sealed class PriorityTests : SchedulerHarness
{
    private readonly SessionGauge _held = new();
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

    [Theory]
    [InlineData(0)] // both channels' mail in one queue
    [InlineData(1)] // the transactional mail in another queue than the bulk
    public async Task A_freed_destination_slot_goes_to_the_higher_priority_channel_first(int txQueue)
    {
        // Bulk is listed first and its mail came first: only Priority can put the transactional mail ahead.
        Open(Options(bulkPriority: 0, txPriority: 10, destinationConcurrency: 1), queues: 2);
        await Hold(1, "b1@bulk.test", "b2@bulk.test", "b3@bulk.test");
        await Ready(txQueue, "t1@tx.test", "t2@tx.test");
        _release.SetResult();
        Assert.Equal(["b1@bulk.test", "t1@tx.test", "t2@tx.test", "b2@bulk.test", "b3@bulk.test"], await Arrivals(5));
    }

    [Fact]
    public async Task A_paced_destination_gives_its_next_turn_to_the_higher_priority_channel()
    {
        var options = Options(bulkPriority: 0, txPriority: 10, destinationConcurrency: 10);
        foreach (var c in options.Channels) c.DestinationRatePerMinute = 60; // one a second, a burst of one
        Open(options, queues: 2);
        foreach (var b in new[] { "b1@bulk.test", "b2@bulk.test", "b3@bulk.test" }) await Accept(new Envelope("s@localhost", [b]));
        Deliver();
        await Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(15));
        await Ready(1, "t1@tx.test", "t2@tx.test");
        for (int n = 2; n <= 5; n++)
        {
            Time.Advance(TimeSpan.FromSeconds(1));
            await Sink.WaitForCountAsync(n, TimeSpan.FromSeconds(15));
        }
        Assert.Equal(["b1@bulk.test", "t1@tx.test", "t2@tx.test", "b2@bulk.test", "b3@bulk.test"], await Arrivals(5));
    }

    [Fact]
    public async Task Channels_of_equal_priority_take_a_shared_destination_in_turn()
    {
        Open(Options(bulkPriority: 0, txPriority: 0, destinationConcurrency: 1), queues: 1);
        await Hold(1, "b1@bulk.test", "b2@bulk.test", "b3@bulk.test", "b4@bulk.test");
        await Ready(0, "t1@tx.test", "t2@tx.test");
        _release.SetResult();
        Assert.Equal(["b1@bulk.test", "t1@tx.test", "b2@bulk.test", "t2@tx.test", "b3@bulk.test", "b4@bulk.test"], await Arrivals(6));
    }

    [Fact]
    public async Task A_channel_with_every_slot_busy_holds_up_no_other_channel()
    {
        var options = Options(bulkPriority: 0, txPriority: 0, destinationConcurrency: 20);
        options.Channels.Single(c => c.Name == "bulk").Concurrency = 2;
        Open(options, queues: 1);
        await Hold(2, [.. Enumerable.Range(1, 10).Select(i => $"b{i}@bulk.test")]);
        await Accept(new Envelope("s@localhost", ["t1@tx.test"]));
        await Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(15));
        Assert.Equal("t1@tx.test", Assert.Single(Sink.Messages).Recipients[0]);
        Assert.Equal(2, _held.Current);
        _release.SetResult();
    }

    /// <summary>Bulk and transactional mail on two channels routed to one sink: one destination for both.</summary>
    private SluiceOptions Options(int bulkPriority, int txPriority, int destinationConcurrency)
    {
        var options = DefaultOptions(TimeSpan.FromDays(1));
        options.Channels =
        [
            new() { Name = "local", Transport = ChannelOptions.MaildirTransport, Domains = ["localhost"], Concurrency = 8 },
            new() { Name = "remote", Transport = ChannelOptions.SmtpTransport, Concurrency = 8 },
            new() { Name = "bulk", Transport = ChannelOptions.SmtpTransport, Domains = ["bulk.test"], Concurrency = 50,
                    DestinationConcurrency = destinationConcurrency, Priority = bulkPriority },
            new() { Name = "tx", Transport = ChannelOptions.SmtpTransport, Domains = ["tx.test"], Concurrency = 50,
                    DestinationConcurrency = destinationConcurrency, Priority = txPriority },
        ];
        return options;
    }

    /// <summary>Accepts the bulk mail into queue 0, starts delivery, and waits until the first <paramref name="held"/> are held at the sink.</summary>
    private async Task Hold(int held, params string[] bulk)
    {
        var seen = 0;
        Sink.BeforeDataReply = async _ =>
        {
            if (Interlocked.Increment(ref seen) > held) return;
            _held.Enter();
            try { await _release.Task; }
            finally { _held.Leave(); }
        };
        foreach (var b in bulk) await Accept(new Envelope("s@localhost", [b]));
        Deliver();
        await _held.WaitForAsync(held, TimeSpan.FromSeconds(15));
    }

    /// <summary>
    /// Accepts the recipients into <paramref name="queue"/> and returns once its todo stage has handed them
    /// to the scheduler: it splits in order, so a later message's "new msg" line comes after their split.
    /// </summary>
    private async Task Ready(int queue, params string[] recipients)
    {
        foreach (var r in recipients) await Accept(new Envelope("s@localhost", [r]), queue: queue);
        var marker = await Accept(new Envelope("s@localhost", ["marker@localhost"]), queue: queue);
        await Lines.WaitForAsync($"new msg {marker.Id}");
    }

    /// <summary>The recipients in the order the sink took their messages, once there are <paramref name="count"/>.</summary>
    private async Task<string[]> Arrivals(int count)
    {
        await Sink.WaitForCountAsync(count, TimeSpan.FromSeconds(15));
        return [.. Sink.Messages.Select(m => m.Recipients[0])];
    }
}
