// A real scheduler's load, as the Balancer and the Scaler read it: a queue whose remote slots are all
// busy is fully loaded although its local channel is idle, so new mail goes to the other queue; mail
// waiting for a destination's connection (shared by every queue) takes no slot and is no load.
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Queue;
using Sluice.Testing;

namespace Sluice.Scheduling.Tests;

public sealed class QueueLoadTests : SchedulerHarness
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SessionGauge _held = new();

    private SluiceOptions HoldingSink(int remoteSlots, int destinationConcurrency)
    {
        Sink.BeforeDataReply = async _ =>
        {
            _held.Enter();
            try { await _release.Task; }
            finally { _held.Leave(); }
        };
        var options = DefaultOptions(TimeSpan.FromDays(1));
        options.Channels =
        [
            new() { Name = "local", Transport = ChannelOptions.MaildirTransport, Domains = ["localhost"], Concurrency = 2 },
            new() { Name = "remote", Transport = ChannelOptions.SmtpTransport, Concurrency = remoteSlots,
                    DestinationConcurrency = destinationConcurrency, InitialDestinationConcurrency = destinationConcurrency },
        ];
        return options;
    }

    [Fact]
    public async Task A_queue_with_its_remote_slots_all_busy_is_fully_loaded_and_the_balancer_sends_new_mail_elsewhere()
    {
        Start(HoldingSink(remoteSlots: 2, destinationConcurrency: 10), queues: 2);
        await Task.WhenAll(Accept(new Envelope("a@localhost", ["u1@remote.test"])), Accept(new Envelope("a@localhost", ["u2@remote.test"])));
        await _held.WaitForAsync(2, Patience);

        Assert.Equal(1.0, Queues[0].Load());
        Assert.Equal(0.0, Queues[1].Load());
        var balancer = new Balancer(Queues);
        for (int i = 0; i < 4; i++) Assert.Same(Queues[1], balancer.Pick()); // whichever queue the round robin starts at

        _release.SetResult();
        await Sink.WaitForCountAsync(2, Patience);
    }

    [Fact]
    public async Task Mail_waiting_for_a_destination_held_by_another_queue_is_no_load()
    {
        Start(HoldingSink(remoteSlots: 4, destinationConcurrency: 1), queues: 2);
        await Accept(new Envelope("a@localhost", ["u1@remote.test"]));
        await _held.WaitForAsync(1, Patience);
        await Accept(new Envelope("a@localhost", ["u2@remote.test"]), queue: 1);
        await WaitUntilAsync(() => Schedulers[1].ActiveCount == 1); // split into a ready job, waiting for the destination

        Assert.Equal(0.25, Queues[0].Load());
        Assert.Equal(0.0, Queues[1].Load()); // another queue would wait for the same connection: opening one helps nothing
        Assert.Equal(1, Throttle.InUse($"127.0.0.1:{Sink.Port}"));

        _release.SetResult();
        await Sink.WaitForCountAsync(2, Patience);
    }

    /// <summary>The scheduler announces no event for a job that waits; its state is asked until the deadline.</summary>
    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the scheduler did not reach the state in time");
            await Task.Delay(20);
        }
    }
}
