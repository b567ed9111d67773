// Retries, bounces and expiry with the clock driven by the test (FakeTimeProvider), against a
// real spool, a real SMTP sink and real Maildirs (see SchedulerHarness).
using System.Collections.Concurrent;
using Sluice.Queue;

namespace Sluice.Scheduling.Tests;

public sealed class SchedulerTests : SchedulerHarness
{
    [Fact]
    public async Task A_deferred_recipient_is_retried_when_its_time_comes_and_not_before()
    {
        Start(TimeSpan.FromDays(1));
        var replies = new ConcurrentQueue<string>(["451 4.3.0 try later"]);
        Sink.DataReply = _ => replies.TryDequeue(out var r) ? r : "250 2.0.0 ok";
        var m = await Accept("a@remote.test", "b@remote.test");
        await Lines.WaitForAsync("deferral: 127.0.0.1");
        await Lines.WaitForAsync("remote 0/"); // the slot is given back only after the outcome is durable
        Assert.Equal(1, m.States[0].Attempts);
        Assert.Contains("451 4.3.0 try later", m.States[0].LastError, StringComparison.Ordinal);
        Assert.True(m.States[0].NextAttempt > Time.GetUtcNow().AddSeconds(50), "retry follows Retry.Schedule (1m ± 10 %)");
        Assert.Empty(Sink.Messages);

        Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(1, Lines.Count("starting delivery"));
        Time.Advance(TimeSpan.FromSeconds(40));
        await Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(10));
        await Lines.WaitForAsync($"end msg {m.Id}");
        Assert.Equal(0, Queue.Store.MessageCount);
    }

    [Fact]
    public async Task A_permanent_failure_bounces_a_DSN_to_the_sender()
    {
        Start(TimeSpan.FromDays(1));
        Sink.DataReply = _ => "550 5.1.1 no such user";
        var m = await Accept("alice@localhost", "bob@remote.test");
        await Lines.WaitForAsync("failure: 127.0.0.1");
        await Lines.WaitForAsync("to local alice@localhost");
        await Lines.WaitForAsync("success: 250 2.0.0 delivered to maildir alice/"); // delivery numbers are per process, not per test
        var dsn = await File.ReadAllTextAsync(Assert.Single(Directory.GetFiles(Dir.File("maildirs/alice/new"))));
        Assert.Contains("Return-Path: <>", dsn, StringComparison.Ordinal);
        Assert.Contains("report-type=delivery-status", dsn, StringComparison.Ordinal);
        Assert.Contains("Final-Recipient: rfc822; bob@remote.test", dsn, StringComparison.Ordinal);
        Assert.Contains("Status: 5.1.1", dsn, StringComparison.Ordinal);
        Assert.Contains("Subject: scheduled", dsn, StringComparison.Ordinal);
        // The DSN is durable before the outcome it reports is recorded: the message ends after it.
        await Lines.WaitForAsync($"end msg {m.Id}");
        Assert.Equal(RecipientStatus.Failed, m.States[0].Status);
    }

    [Fact]
    public async Task A_recipient_still_deferred_after_the_queue_lifetime_expires_into_a_bounce()
    {
        Start(TimeSpan.FromMinutes(10));
        Sink.DataReply = _ => "451 4.7.1 greylisted";
        var m = await Accept("carol@localhost", "dan@remote.test");
        await Lines.WaitForAsync("deferral: 127.0.0.1");
        await Lines.WaitForAsync("remote 0/"); // the slot is given back only after the outcome is durable
        Time.Advance(TimeSpan.FromMinutes(11));
        await Lines.WaitForAsync($"bounce msg {m.Id}");
        await Lines.WaitForAsync("to local carol@localhost");
        await Lines.WaitForAsync($"end msg {m.Id}");
        Assert.Equal(RecipientStatus.Failed, m.States[0].Status);
        Assert.Contains("expired after", m.States[0].LastError, StringComparison.Ordinal);

        // The expiry is our decision: our own diagnostic type (RFC 3464 §2.3.6), no Remote-MTA (§2.3.5).
        await Lines.WaitForAsync("delivered to maildir carol/");
        var dsn = await File.ReadAllTextAsync(Assert.Single(Directory.GetFiles(Dir.File("maildirs/carol/new"))));
        Assert.Contains("\nStatus: 4.4.7\nDiagnostic-Code: X-Sluice; message expired after 0.2 hours in the queue; last error: "
            + $"127.0.0.1:{Sink.Port} said: 451 4.7.1 greylisted\n", dsn.Replace("\n ", " ", StringComparison.Ordinal), StringComparison.Ordinal); // unfolded
        Assert.DoesNotContain("Remote-MTA", dsn, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failed_bounce_is_not_bounced_again_but_goes_to_the_postmaster()
    {
        Start(TimeSpan.FromDays(1));
        Sink.DataReply = _ => "550 5.7.1 go away";
        var m = await Accept("", "erin@remote.test");
        var line = await Lines.WaitForAsync($"double bounce msg {m.Id} qp");
        await Lines.WaitForAsync("delivered to maildir postmaster/");
        await Lines.WaitForAsync($"end msg {m.Id}");
        await Lines.WaitForAsync($"end msg {line.TrimEnd()[(line.TrimEnd().LastIndexOf(' ') + 1)..]}");
        Assert.Equal(0, Queue.Store.MessageCount);
    }
}
