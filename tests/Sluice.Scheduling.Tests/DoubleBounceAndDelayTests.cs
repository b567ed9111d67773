// A failed bounce goes to the postmaster once (a double bounce) and a failed double bounce is
// discarded (a triple bounce); Retry.DelayWarning sends one "delayed" report per message, as NOTIFY allows.
using MimeKit;
using Sluice.Core.Mail;
using Sluice.Queue;

namespace Sluice.Scheduling.Tests;

public sealed class DoubleBounceAndDelayTests : SchedulerHarness
{
    [Fact]
    public async Task A_bounce_that_fails_reaches_the_postmaster_as_a_double_bounce()
    {
        Start(TimeSpan.FromDays(1));
        Sink.DataReply = _ => "550 5.1.1 no such user"; // bob and then alice (the bounce's recipient) both fail
        var m = await Accept("alice@remote.test", "bob@remote.test");
        var bounceLine = await Lines.WaitForAsync($"bounce msg {m.Id} qp");
        var bounceId = LastWord(bounceLine);
        var doubleLine = await Lines.WaitForAsync($"double bounce msg {bounceId} qp");
        var doubleId = LastWord(doubleLine);
        await Lines.WaitForAsync($"end msg {doubleId}");

        var report = await MimeMessage.LoadAsync(Assert.Single(Mailbox("postmaster")));
        Assert.Equal("postmaster@localhost", report.To.Mailboxes.Single().Address);
        Assert.Equal("Undelivered Mail Delivery Report (double bounce)", report.Subject);
        var parts = Assert.IsType<MultipartReport>(report.Body);
        var status = Assert.IsType<MessageDeliveryStatus>(parts[1]);
        var recipient = status.StatusGroups.Skip(1).First(g => g.Count > 0);
        Assert.Equal("rfc822; alice@remote.test", recipient["Final-Recipient"]);
        Assert.Equal("failed", recipient["Action"]);
        Assert.Equal("5.1.1", recipient["Status"]);
        Assert.Equal("dns; 127.0.0.1", recipient["Remote-MTA"]);
        Assert.Equal("smtp; 550 5.1.1 no such user", recipient["Diagnostic-Code"]);
        var returned = Assert.IsType<MessagePart>(parts[2]); // the failed bounce, whole
        Assert.Equal("Undelivered Mail Returned to Sender", returned.Message?.Subject);
        Assert.Equal(0, Lines.Count("triple bounce"));
        Assert.Equal(1, Lines.Count("double bounce msg"));
    }

    [Fact]
    public async Task A_double_bounce_that_fails_is_discarded()
    {
        var options = DefaultOptions(TimeSpan.FromDays(1));
        options.Smtp.LocalDomains = ["pm.test"]; // the postmaster's domain goes to the (refusing) sink
        Start(options);
        Sink.DataReply = _ => "550 5.7.1 go away";
        var m = await Accept("", "erin@remote.test");
        var doubleLine = await Lines.WaitForAsync($"double bounce msg {m.Id} qp");
        var doubleId = LastWord(doubleLine);
        await Lines.WaitForAsync($"triple bounce: discarding msg {doubleId}");
        await Lines.WaitForAsync($"end msg {doubleId}");
        Assert.Equal(1, Lines.Count("double bounce msg"));
        Assert.Equal(1, Lines.Count("triple bounce"));
        Assert.Equal(1, Lines.Count("to remote postmaster@pm.test"));
        Assert.Equal(0, Queue.Store.MessageCount);
    }

    [Fact]
    public async Task A_delay_warning_is_sent_once_after_DelayWarning()
    {
        StartBusy(TimeSpan.FromMinutes(3));
        var m = await Accept(new Envelope("alice@localhost", ["bob@remote.test"]) { Dsn = [new(DsnNotify.Delay | DsnNotify.Failure, null)] });
        await DeferralsAsync(1);
        Assert.Equal(0, Lines.Count("delay warning"));
        var line = await DriveUntilAsync($"delay warning msg {m.Id} qp");
        Assert.True(Time.GetUtcNow() - m.ReceivedAt >= TimeSpan.FromMinutes(3));
        await DeferralsAsync(Lines.Count("deferral: 127.0.0.1") + 3);
        Assert.Equal(1, Lines.Count("delay warning msg"));
        await Lines.WaitForAsync($"end msg {LastWord(line)}");

        var report = await MimeMessage.LoadAsync(Assert.Single(Mailbox("alice")));
        Assert.Equal("Delayed Mail (still being retried)", report.Subject);
        var parts = Assert.IsType<MultipartReport>(report.Body);
        var recipient = Assert.IsType<MessageDeliveryStatus>(parts[1]).StatusGroups.Skip(1).First(g => g.Count > 0);
        Assert.Equal("rfc822; bob@remote.test", recipient["Final-Recipient"]);
        Assert.Equal("delayed", recipient["Action"]);
        Assert.Equal("4.2.0", recipient["Status"]);
        Assert.Equal("dns; 127.0.0.1", recipient["Remote-MTA"]);
        Assert.Equal("smtp; 451 4.2.0 mailbox busy", recipient["Diagnostic-Code"]);
        Assert.Equal("text/rfc822-headers", parts[2].ContentType.MimeType);
        Assert.Equal(RecipientStatus.Pending, m.States[0].Status);
    }

    [Fact]
    public async Task A_delay_warning_reports_the_last_reply_of_each_recipient_also_those_read_back_from_the_spool()
    {
        StartBusy(TimeSpan.FromMinutes(3));
        // Two domains, two jobs: the warning comes with one job's outcome, the other's last reply is what the spool kept.
        var m = await Accept(new Envelope("alice@localhost", ["bob@remote.test", "carol@other.test"]));
        await Lines.WaitForAfterAsync(Deferral, 2, "remote 0/");
        Time.Advance(TimeSpan.FromMinutes(4));
        var line = await Lines.WaitForAsync($"delay warning msg {m.Id} qp");
        await Lines.WaitForAsync($"end msg {LastWord(line)}");

        var report = await MimeMessage.LoadAsync(Assert.Single(Mailbox("alice")));
        var status = Assert.IsType<MessageDeliveryStatus>(Assert.IsType<MultipartReport>(report.Body)[1]);
        var groups = status.StatusGroups.Skip(1).Where(g => g.Count > 0).ToList();
        Assert.Equal(["rfc822; bob@remote.test", "rfc822; carol@other.test"], groups.Select(g => g["Final-Recipient"]).Order());
        Assert.All(groups, g =>
        {
            Assert.Equal("delayed", g["Action"]);
            Assert.Equal("dns; 127.0.0.1", g["Remote-MTA"]);
            Assert.Equal("smtp; 451 4.2.0 mailbox busy", g["Diagnostic-Code"]);
        });
    }

    [Theory]
    [InlineData(DsnNotify.Never)]
    [InlineData(DsnNotify.Failure)]
    public async Task No_delay_warning_unless_NOTIFY_allows_DELAY(DsnNotify notify)
    {
        StartBusy(TimeSpan.FromMinutes(2));
        var m = await Accept(new Envelope("alice@localhost", ["bob@remote.test"]) { Dsn = [new(notify, null)] });
        await DeferralsAsync(6); // the last ones well past DelayWarning, each recorded before the next starts
        Assert.True(Time.GetUtcNow() - m.ReceivedAt > TimeSpan.FromMinutes(3));
        Assert.Equal(0, Lines.Count("delay warning"));
        Assert.Empty(Mailbox("alice"));
    }

    /// <summary>Starts with delay warnings after <paramref name="delayWarning"/>, against a sink that defers every message.</summary>
    private void StartBusy(TimeSpan delayWarning)
    {
        var options = DefaultOptions(TimeSpan.FromDays(1));
        options.Retry.DelayWarning = delayWarning;
        Start(options);
        Sink.DataReply = _ => "451 4.2.0 mailbox busy";
    }

    /// <summary>The queue ID a "... qp ID" log line ends with.</summary>
    private static string LastWord(string line) => line.TrimEnd()[(line.TrimEnd().LastIndexOf(' ') + 1)..];

    private const string Deferral = "deferral: 127.0.0.1";
    /// <summary>Past the next retry: Retry.Schedule is 1m ± 10 %.</summary>
    private static readonly TimeSpan PastRetry = TimeSpan.FromSeconds(70);

    /// <summary>Drives tries, each to its end, until <paramref name="count"/> have been deferred.</summary>
    private async Task DeferralsAsync(int count) => await DriveAsync(count, null);

    /// <summary>Drives tries, each to its end, until a line holding <paramref name="fragment"/> is logged.</summary>
    private async Task<string> DriveUntilAsync(string fragment)
    {
        var found = Lines.WaitForAsync(fragment);
        await DriveAsync(int.MaxValue, found);
        return await found;
    }

    private async Task DriveAsync(int count, Task? until)
    {
        for (var k = Math.Max(Lines.Count(Deferral), 1); ; k++)
        {
            // Try k is over once it is deferred and its slot given back: its retry is queued by then,
            // so moving the clock past it starts try k + 1.
            await Lines.WaitForAfterAsync(Deferral, k, "remote 0/");
            if (k >= count || until?.IsCompleted == true) return;
            Time.Advance(PastRetry);
        }
    }
}
