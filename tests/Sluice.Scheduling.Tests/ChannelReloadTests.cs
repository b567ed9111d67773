// A reloaded channel map (SIGHUP) as the scheduler takes it: work split for a channel that is gone
// moves to the channel that now owns its domain, and deliveries in flight finish under the old one.
using System.Collections.Concurrent;
using Sluice.Core.Configuration;

namespace Sluice.Scheduling.Tests;

public sealed class ChannelReloadTests : SchedulerHarness
{
    private static ChannelOptions Local => new() { Name = "local", Transport = "maildir", Domains = ["localhost"] };
    private static ChannelOptions Remote => new() { Name = "remote", Transport = "smtp" };
    private static ChannelOptions Bulk => new() { Name = "bulk", Transport = "smtp", Domains = ["big.example"], Concurrency = 1 };

    [Fact]
    public async Task A_deferred_recipient_of_a_removed_channel_is_retried_through_the_channel_that_now_owns_its_domain()
    {
        var options = DefaultOptions(TimeSpan.FromDays(1));
        options.Channels = [Local, Remote, Bulk];
        Start(options);
        var replies = new ConcurrentQueue<string>(["451 4.3.0 try later"]);
        Sink.DataReply = _ => replies.TryDequeue(out var r) ? r : "250 2.0.0 ok";
        var m = await Accept("a@localhost", "u@big.example");
        await Lines.WaitForAsync("deferral: 127.0.0.1");
        await Lines.WaitForAsync("bulk 0/1");

        Schedulers[0].Reload(new ChannelMap([Local, Remote]));
        Time.Advance(TimeSpan.FromMinutes(2));
        await Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(10));
        await Lines.WaitForAsync($"end msg {m.Id}");
        Assert.Equal(1, Lines.Count("to bulk u@big.example"));
        Assert.Equal(1, Lines.Count("to remote u@big.example"));
    }

    [Fact]
    public async Task Ready_work_moves_to_the_new_channel_at_once_while_the_removed_one_finishes_what_is_in_flight()
    {
        var options = DefaultOptions(TimeSpan.FromDays(1));
        options.Channels = [Local, Remote, Bulk];
        Start(options);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Sink.BeforeDataReply = r => r.Recipients[0] == "first@big.example" ? release.Task : Task.CompletedTask;
        await Accept("a@localhost", "first@big.example");
        await Lines.WaitForAsync("to bulk first@big.example");
        await Accept("a@localhost", "second@big.example"); // bulk's one slot is taken: this one waits
        await Lines.WaitForAsync("new msg");
        Assert.Equal(0, Lines.Count("second@big.example"));

        Schedulers[0].Reload(new ChannelMap([Local, Remote]));
        await Lines.WaitForAsync("to remote second@big.example");
        await Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(10));
        release.SetResult();
        await Sink.WaitForCountAsync(2, TimeSpan.FromSeconds(10));
        await Lines.WaitForCountAsync("end msg", 2);
        Assert.Equal(2, Lines.Count("success: 127.0.0.1"));
        Assert.Equal(0, Queue.Store.MessageCount);

        // Put back, the channel has its one slot free again: the delivery that finished after it was removed gave it back.
        Schedulers[0].Reload(new ChannelMap([Local, Remote, Bulk]));
        await Accept("a@localhost", "third@big.example");
        await Lines.WaitForAsync("to bulk third@big.example");
        await Sink.WaitForCountAsync(3, TimeSpan.FromSeconds(10));
    }
}
