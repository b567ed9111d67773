// RFC 3461/3464 delivery status notifications end to end through the scheduler: NOTIFY decides
// who is told, RET what comes back, ORCPT and ENVID are echoed, the next hop's reply is reported
// as itself (Remote-MTA, "smtp;") and our own errors as ours ("X-Sluice;"), an SMTPUTF8 message
// gets an RFC 6533 report, and a relay passes the DSN parameters (and SMTPUTF8, BODY) on to a next
// hop that offers them. Reports are parsed back with MimeKit, and their field lines read as bytes.
using System.Text;
using MimeKit;
using Sluice.Core.Mail;
using Sluice.Queue;

namespace Sluice.Scheduling.Tests;

public sealed class DsnTests : SchedulerHarness
{
    private static RecipientDsn Notify(DsnNotify notify, string? orcpt = null) => new(notify, orcpt);

    [Fact]
    public async Task NOTIFY_NEVER_makes_no_bounce()
    {
        Start(TimeSpan.FromDays(1));
        Sink.DataReply = _ => "550 5.1.1 no such user";
        var m = await Accept(new Envelope("alice@localhost", ["bob@remote.test"]) { Dsn = [Notify(DsnNotify.Never)] });
        await Lines.WaitForAsync($"bounce msg {m.Id}: suppressed for bob@remote.test (NOTIFY=NEVER)");
        await Lines.WaitForAsync($"end msg {m.Id}");
        Assert.Equal(1, Lines.Count("failure: 127.0.0.1"));
        Assert.Equal(0, Lines.Count($"bounce msg {m.Id} qp"));
        Assert.Equal(RecipientStatus.Failed, m.States[0].Status);
        Assert.Equal(0, Queue.Store.MessageCount);
        Assert.Empty(Mailbox("alice"));
    }

    [Fact]
    public async Task A_bounce_for_several_recipients_lists_only_those_that_want_it()
    {
        Start(TimeSpan.FromDays(1));
        Sink.DataReply = _ => "550 5.1.1 no such user";
        var m = await Accept(new Envelope("alice@localhost", ["bob@remote.test", "carol@remote.test", "dan@remote.test"])
        {
            Dsn = [Notify(DsnNotify.Never), default, Notify(DsnNotify.Success)],
        });
        var report = await ReportToAsync("alice");
        Assert.Equal(1, Lines.Count($"bounce msg {m.Id} qp"));
        Assert.Equal(1, Lines.Count($"bounce msg {m.Id}: suppressed for bob@remote.test (NOTIFY=NEVER)"));
        Assert.Equal(1, Lines.Count($"bounce msg {m.Id}: suppressed for dan@remote.test (NOTIFY=SUCCESS)"));
        var group = Assert.Single(Recipients(report));
        Assert.Equal("rfc822; carol@remote.test", group["Final-Recipient"]);
        Assert.Equal("failed", group["Action"]);
    }

    [Fact]
    public async Task A_failure_report_echoes_ENVID_and_ORCPT_and_RET_HDRS_returns_only_headers()
    {
        Start(TimeSpan.FromDays(1));
        Sink.DataReply = _ => "550 5.1.1 no such user";
        var m = await Accept(new Envelope("alice@localhost", ["bob@remote.test"])
        {
            Return = DsnReturn.Headers,
            EnvelopeId = "QQ314159",
            Dsn = [Notify(DsnNotify.Failure, "rfc822;bob@example.com")],
        });
        var report = await ReportToAsync("alice");
        Assert.Equal("Undelivered Mail Returned to Sender", report.Subject);
        var perMessage = Status(report).StatusGroups[0];
        Assert.Equal("QQ314159", perMessage["Original-Envelope-Id"]);
        Assert.Equal($"dns; {Hostname}", perMessage["Reporting-MTA"]);
        Assert.NotNull(perMessage["Arrival-Date"]);
        var recipient = Recipients(report)[0];
        Assert.Equal("rfc822;bob@example.com", recipient["Original-Recipient"]);
        Assert.Equal("rfc822; bob@remote.test", recipient["Final-Recipient"]);
        Assert.Equal("failed", recipient["Action"]);
        Assert.Equal("5.1.1", recipient["Status"]);
        Assert.Equal("dns; 127.0.0.1", recipient["Remote-MTA"]); // the route's host, not "127.0.0.1:PORT said: ..."
        Assert.Equal("smtp; 550 5.1.1 no such user", recipient["Diagnostic-Code"]);

        var headers = ReturnedHeaders(report);
        Assert.Contains("Subject: scheduled", headers, StringComparison.Ordinal);
        Assert.DoesNotContain("body", headers, StringComparison.Ordinal);
        await Lines.WaitForAsync($"end msg {m.Id}");
    }

    [Fact]
    public async Task RET_FULL_returns_the_whole_message()
    {
        Start(TimeSpan.FromDays(1));
        Sink.DataReply = _ => "550 5.1.1 no such user";
        await Accept(new Envelope("alice@localhost", ["bob@remote.test"]) { Return = DsnReturn.Full });
        var report = await ReportToAsync("alice");
        var returned = Assert.IsType<MessagePart>(Parts(report)[2]);
        Assert.Equal("scheduled", returned.Message?.Subject);
        Assert.Equal("body", returned.Message?.TextBody?.Trim());
    }

    [Fact]
    public async Task RET_FULL_of_a_message_over_10_MB_returns_its_headers_and_says_so()
    {
        Start(TimeSpan.FromDays(1));
        Sink.DataReply = _ => "550 5.3.4 too big for me";
        var big = "Subject: big\r\n\r\n" + string.Concat(Enumerable.Repeat(new string('x', 998) + "\r\n", 10_600));
        await Accept(new Envelope("alice@localhost", ["bob@remote.test"]) { Return = DsnReturn.Full }, big);
        var report = await ReportToAsync("alice");
        Assert.Equal("Subject: big", ReturnedHeaders(report).TrimEnd());
        Assert.Contains("only its headers are attached", ((TextPart)Parts(report)[0]).Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NOTIFY_SUCCESS_on_maildir_delivery_reports_delivered()
    {
        Start(TimeSpan.FromDays(1));
        var m = await Accept(new Envelope("alice@localhost", ["bob@localhost"])
        {
            Return = DsnReturn.Full, // a success report returns headers only, whatever RET says
            EnvelopeId = "env-1",
            Dsn = [Notify(DsnNotify.Success | DsnNotify.Failure, "rfc822;bob@example.com")],
        });
        var report = await ReportToAsync("alice");
        Assert.Single(Mailbox("bob"));
        Assert.Equal(1, Lines.Count($"success dsn msg {m.Id} qp"));
        Assert.Equal("Successful Mail Delivery Report", report.Subject);
        Assert.Equal("env-1", Status(report).StatusGroups[0]["Original-Envelope-Id"]);
        var recipient = Recipients(report)[0];
        Assert.Equal("rfc822;bob@example.com", recipient["Original-Recipient"]);
        Assert.Equal("rfc822; bob@localhost", recipient["Final-Recipient"]);
        Assert.Equal("delivered", recipient["Action"]);
        Assert.Equal("2.0.0", recipient["Status"]);
        Assert.Contains("Subject: scheduled", ReturnedHeaders(report), StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_success_report_goes_to_a_null_sender()
    {
        Start(TimeSpan.FromDays(1));
        var m = await Accept(new Envelope("", ["bob@localhost"]) { Dsn = [Notify(DsnNotify.Success)] });
        await Lines.WaitForAsync($"end msg {m.Id}");
        Assert.Single(Mailbox("bob"));
        Assert.Equal(0, Lines.Count("success dsn"));
        Assert.Equal(0, Queue.Store.MessageCount);
    }

    [Fact]
    public async Task DSN_parameters_go_on_to_a_next_hop_that_offers_DSN_and_then_we_report_nothing()
    {
        Start(TimeSpan.FromDays(1));
        Sink.Extensions = ["DSN"]; // and no PIPELINING: one command at a time
        var m = await Accept(new Envelope("alice@localhost", ["bob@remote.test", "carol@remote.test"])
        {
            Return = DsnReturn.Headers,
            EnvelopeId = "QQ+314=159",
            Dsn = [Notify(DsnNotify.Success | DsnNotify.Failure, "rfc822;bob+tag@example.com"), default],
        });
        await Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(10));
        await Lines.WaitForAsync($"end msg {m.Id}");
        var seen = Assert.Single(Sink.Messages);
        Assert.Equal("RET=HDRS ENVID=QQ+2B314+3D159", seen.MailParameters); // RFC 3461 §4 xtext
        Assert.Equal(["NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Btag@example.com", ""], seen.RecipientParameters);
        Assert.Equal(0, Lines.Count("success dsn"));
        Assert.Empty(Mailbox("alice"));
    }

    [Fact]
    public async Task Relaying_to_a_next_hop_without_DSN_reports_relayed()
    {
        Start(TimeSpan.FromDays(1));
        var m = await Accept(new Envelope("alice@localhost", ["bob@remote.test"])
        {
            Return = DsnReturn.Headers,
            EnvelopeId = "env-2",
            Dsn = [Notify(DsnNotify.Success)],
        });
        var report = await ReportToAsync("alice");
        Assert.Equal(1, Lines.Count($"success dsn msg {m.Id} qp"));
        var seen = Assert.Single(Sink.Messages);
        Assert.Equal("", seen.MailParameters);
        Assert.Equal([""], seen.RecipientParameters);
        var recipient = Recipients(report)[0];
        Assert.Equal("relayed", recipient["Action"]);
        Assert.Equal("2.0.0", recipient["Status"]);
        Assert.Equal("dns; 127.0.0.1", recipient["Remote-MTA"]);
        Assert.Equal("smtp; 250 2.0.0 queued", recipient["Diagnostic-Code"]);
    }

    [Fact]
    public async Task SMTPUTF8_required_but_not_offered_fails_with_5_6_7()
    {
        Start(TimeSpan.FromDays(1));
        var m = await Accept(new Envelope("alice@localhost", ["用户@remote.test"]) { SmtpUtf8 = true });
        await Lines.WaitForAsync($"failure: 553 5.6.7 SMTPUTF8 required but not offered by 127.0.0.1:{Sink.Port}");
        var report = await ReportToAsync("alice", "global-delivery-status");
        var recipient = Recipients(report)[0];
        Assert.Equal("5.6.7", recipient["Status"]);
        Assert.Equal("utf-8; 用户@remote.test", recipient["Final-Recipient"]); // RFC 6533 §3 utf-8-addr-unitext
        // Our decision (the next hop only lacked the extension): our diagnostic type, and no Remote-MTA.
        Assert.Equal($"X-Sluice; 553 5.6.7 SMTPUTF8 required but not offered by 127.0.0.1:{Sink.Port}", recipient["Diagnostic-Code"]);
        Assert.Null(recipient["Remote-MTA"]);
        // The DSN is durable before the outcome it reports is recorded: the message ends after it.
        await Lines.WaitForAsync($"end msg {m.Id}");
        Assert.Equal(RecipientStatus.Failed, m.States[0].Status);
        Assert.Empty(Sink.Messages);
    }

    [Fact]
    public async Task SMTPUTF8_and_BODY_8BITMIME_go_on_when_offered()
    {
        Start(TimeSpan.FromDays(1));
        Sink.Extensions = ["PIPELINING", "SMTPUTF8", "8BITMIME"];
        var m = await Accept(new Envelope("alice@localhost", ["用户@remote.test"]) { SmtpUtf8 = true, EightBitMime = true });
        await Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(10));
        await Lines.WaitForAsync($"end msg {m.Id}");
        var seen = Assert.Single(Sink.Messages);
        Assert.Equal("SMTPUTF8 BODY=8BITMIME", seen.MailParameters);
        Assert.Equal("用户@remote.test", Encoding.UTF8.GetString(Encoding.Latin1.GetBytes(seen.Recipients[0]))); // the sink reads octets
    }

    [Fact]
    public async Task An_all_ASCII_SMTPUTF8_message_goes_to_a_server_without_it_unchanged()
    {
        Start(TimeSpan.FromDays(1));
        var m = await Accept(new Envelope("alice@localhost", ["bob@remote.test"]) { SmtpUtf8 = true });
        await Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(10));
        await Lines.WaitForAsync($"end msg {m.Id}");
        Assert.Equal("", Assert.Single(Sink.Messages).MailParameters);
        Assert.Equal(RecipientStatus.Delivered, m.States[0].Status);
    }

    /// <summary>The one report delivered to <paramref name="user"/>'s Maildir, parsed; its report type must be <paramref name="type"/>.</summary>
    private async Task<MimeMessage> ReportToAsync(string user, string type = "delivery-status")
    {
        await Lines.WaitForAsync($"delivered to maildir {user}/");
        var report = await MimeMessage.LoadAsync(Assert.Single(Mailbox(user)));
        Assert.Equal(type, Assert.IsType<MultipartReport>(report.Body).ReportType);
        return report;
    }

    private static MultipartReport Parts(MimeMessage report)
    {
        var parts = Assert.IsType<MultipartReport>(report.Body);
        Assert.Equal(3, parts.Count);
        return parts;
    }

    private static MessageDeliveryStatus Status(MimeMessage report) => Assert.IsType<MessageDeliveryStatus>(Parts(report)[1]);

    /// <summary>The per-recipient groups (RFC 3464 §2.3); MimeKit reads the blank line that ends the part as one more, empty.</summary>
    private static List<HeaderList> Recipients(MimeMessage report) => [.. Status(report).StatusGroups.Skip(1).Where(g => g.Count > 0)];

    private static string ReturnedHeaders(MimeMessage report)
    {
        var part = Parts(report)[2];
        Assert.Equal("text/rfc822-headers", part.ContentType.MimeType);
        using var text = new MemoryStream();
        part.WriteTo(text, contentOnly: true);
        return Encoding.UTF8.GetString(text.ToArray()).ReplaceLineEndings("\r\n");
    }
}
