// The scheduler's two tiers: at most Queue.ActiveMessages messages are worked on with their envelope
// in memory, the rest wait in the spool; a backlog for one destination is parked instead of filling
// the active tier; recovered and deferred messages come back in due order; a delay warning is
// marked in the spool so a restart does not repeat it.
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Queue;
using Sluice.Testing;

namespace Sluice.Scheduling.Tests;

public sealed class TieredQueueTests : SchedulerHarness
{
    private const int Limit = 8;

    private SluiceOptions Options()
    {
        var options = DefaultOptions(TimeSpan.FromDays(1));
        options.Queue.ActiveMessages = Limit;
        return options;
    }

    /// <summary>Samples the active tier at every delivery-log line and keeps the largest size seen.</summary>
    private Func<int> WatchPeak()
    {
        var peak = 0;
        Lines.Observer = _ =>
        {
            if (Schedulers.Count == 0) return;
            var n = Schedulers[0].ActiveCount;
            if (n > Volatile.Read(ref peak)) Volatile.Write(ref peak, n);
        };
        return () => Volatile.Read(ref peak);
    }

    [Fact]
    public async Task The_active_tier_never_holds_more_than_ActiveMessages()
    {
        Start(Options());
        var peak = WatchPeak();
        const int count = 300;
        await Task.WhenAll(Enumerable.Range(0, count).Select(i => Accept("a@localhost", $"u{i}@d{i % 30}.test")));
        await Sink.WaitForCountAsync(count, TimeSpan.FromSeconds(30));
        await Lines.WaitForCountAsync("end msg", count);

        Assert.InRange(peak(), 1, Limit);
        Assert.Equal(0, Schedulers[0].ActiveCount);
        Assert.Equal(0, Schedulers[0].WaitingCount);
    }

    [Fact]
    public async Task A_backlog_for_one_destination_is_parked_and_mail_for_others_passes()
    {
        var held = new SessionGauge();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = NewSink();
        slow.BeforeDataReply = async _ =>
        {
            held.Enter();
            try { await release.Task; }
            finally { held.Leave(); }
        };
        var options = Options();
        options.Routes["slow.test"] = $"127.0.0.1:{slow.Port}";
        Start(options);
        var peak = WatchPeak();

        const int backlog = 100;
        await Task.WhenAll(Enumerable.Range(0, backlog).Select(i => Accept("a@localhost", $"u{i}@slow.test")));
        await held.WaitForAsync(1, TimeSpan.FromSeconds(15));
        await Task.WhenAll(Enumerable.Range(0, 3).Select(i => Accept("a@localhost", $"c{i}@fast.test")));
        await Sink.WaitForCountAsync(3, TimeSpan.FromSeconds(15));

        // The slow destination holds at most its share (a quarter of the tier); the rest wait, parked.
        await Lines.WaitForCountAsync("end msg", 3);
        Assert.InRange(Schedulers[0].WaitingCount, backlog - Limit / 4, backlog - 1);
        Assert.Equal(3, Lines.Count(": success: ")); // only the fast ones have been delivered
        release.SetResult();
        await slow.WaitForCountAsync(backlog, TimeSpan.FromSeconds(30));
        await Lines.WaitForCountAsync("end msg", backlog + 3);
        Assert.InRange(peak(), 1, Limit);
    }

    [Fact]
    public async Task Recovered_messages_wait_in_the_spool_and_are_all_delivered_within_the_limit()
    {
        var options = Options();
        Open(options, 1);
        const int count = 120;
        await Task.WhenAll(Enumerable.Range(0, count).Select(i => Accept("a@localhost", $"u{i}@d{i % 7}.test")));
        await RestartAsync(options); // never delivered: all of them come back from the spool alone

        var peak = WatchPeak();
        await Sink.WaitForCountAsync(count, TimeSpan.FromSeconds(30));
        await Lines.WaitForCountAsync("end msg", count);
        Assert.InRange(peak(), 1, Limit);
        Assert.Equal(0, Queue.Store.MessageCount);
    }

    [Fact]
    public async Task A_deferred_message_leaves_the_active_tier_until_its_retry_is_due()
    {
        Start(Options());
        var attempt = 0;
        Sink.DataReply = _ => Interlocked.Increment(ref attempt) == 1 ? "451 4.3.0 try later" : "250 2.0.0 queued";
        var m = await Accept("a@localhost", "b@remote.test");
        await JobEndedAfterDeferralAsync(1);
        Assert.Equal(1, Schedulers[0].WaitingCount);

        Time.Advance(TimeSpan.FromMinutes(2));
        await Lines.WaitForAsync($"end msg {m.Id}");
        Assert.Equal(2, attempt);
        Assert.Equal(RecipientStatus.Delivered, m.States[0].Status);
    }

    [Fact]
    public async Task A_delay_warning_is_not_repeated_after_a_restart()
    {
        var options = Options();
        options.Retry.DelayWarning = TimeSpan.FromMinutes(3);
        Start(options);
        Sink.DataReply = _ => "451 4.2.0 mailbox busy";
        var m = await Accept(new Envelope("alice@localhost", ["bob@remote.test"]) { Dsn = [new(DsnNotify.Delay | DsnNotify.Failure, null)] });
        for (int tries = 1; Lines.Count("delay warning msg") == 0; tries++)
        {
            await JobEndedAfterDeferralAsync(tries);
            Time.Advance(TimeSpan.FromMinutes(2));
        }
        var warning = await Lines.WaitForAsync("delay warning msg");
        var deferrals = Lines.Count("deferral: 127.0.0.1");
        await RestartAsync(options);
        Time.Advance(TimeSpan.FromMinutes(2));
        await Lines.WaitForCountAsync("deferral: 127.0.0.1", deferrals + 1);
        Time.Advance(TimeSpan.FromMinutes(2));
        await Lines.WaitForCountAsync("deferral: 127.0.0.1", deferrals + 2);

        Assert.Equal(1, Lines.Count("delay warning msg"));
        await Lines.WaitForAsync($"end msg {warning.Split(' ')[^1]}");
        Assert.Single(Mailbox("alice"));
        Assert.True(Queue.Store.Recovered.Single(r => r.Id == m.Id).DelayWarned);
    }

    /// <summary>The status line a job logs when it has ended, after the <paramref name="nth"/> deferral: the tiers are updated by then.</summary>
    private Task JobEndedAfterDeferralAsync(int nth) => Lines.WaitForAfterAsync("deferral: 127.0.0.1", nth, "status: ");
}
