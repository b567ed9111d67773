// Who said what in a DSN (RFC 3464 §2.3.5, §2.3.6): the next hop's reply goes in Diagnostic-Code
// as itself ("smtp; 550 ...") with the host that gave it in Remote-MTA (our own errors, "X-Sluice;"
// with no Remote-MTA, are checked where they arise: SchedulerTests for expiry, DsnTests for 5.6.7).
// An SMTPUTF8 message's report is RFC 6533's: message/global-delivery-status, UTF-8 fields, no
// encoded-words. Each test reads the report's bytes as they lie in the Maildir (LF lines), and
// parses them with MimeKit too.
using System.Text;
using MimeKit;
using Sluice.Core.Mail;
using Sluice.Queue;

namespace Sluice.Scheduling.Tests;

public sealed class DsnDiagnosticTests : SchedulerHarness
{
    [Fact]
    public async Task A_refused_recipient_is_reported_with_the_servers_reply_and_the_hosts_name()
    {
        Start(TimeSpan.FromDays(1));
        Sink.RcptReply = rcpt => rcpt == "bob@remote.test" ? "550 5.1.1 <bob@remote.test>: no such user" : null;
        var m = await Accept("alice@localhost", "bob@remote.test");
        var (raw, report) = await ReportToAsync("alice", "delivery-status");
        // The log keeps naming the address and port it talked to.
        Assert.Equal(1, Lines.Count($"failure: 127.0.0.1:{Sink.Port} said: 550 5.1.1 <bob@remote.test>: no such user"));

        // RFC 3464 §2.3: the per-recipient fields in order, Remote-MTA before Diagnostic-Code.
        Assert.Contains("\nFinal-Recipient: rfc822; bob@remote.test\nAction: failed\nStatus: 5.1.1\n"
            + "Remote-MTA: dns; 127.0.0.1\nDiagnostic-Code: smtp; 550 5.1.1 <bob@remote.test>: no such user\nLast-Attempt-Date: ", raw, StringComparison.Ordinal);
        Assert.DoesNotContain(" said: ", StatusPart(raw), StringComparison.Ordinal);
        var recipient = Recipient(report);
        Assert.Equal("dns; 127.0.0.1", recipient["Remote-MTA"]);
        Assert.Equal("smtp; 550 5.1.1 <bob@remote.test>: no such user", recipient["Diagnostic-Code"]);
        await Lines.WaitForAsync($"end msg {m.Id}");
    }

    [Fact]
    public async Task A_multi_line_reply_is_reported_whole_on_one_line()
    {
        Start(TimeSpan.FromDays(1));
        Sink.DataReply = _ => "550-5.7.1 first line\r\n550 5.7.1 second line";
        await Accept("alice@localhost", "bob@remote.test");
        var (raw, report) = await ReportToAsync("alice", "delivery-status");
        Assert.Contains("\nDiagnostic-Code: smtp; 550-5.7.1 first line 550 5.7.1 second line\n", raw, StringComparison.Ordinal);
        Assert.Equal("5.7.1", Recipient(report)["Status"]);
    }

    [Fact]
    public async Task A_non_ASCII_reply_in_a_plain_report_is_ASCII_without_encoded_words()
    {
        Start(TimeSpan.FromDays(1));
        Sink.DataReply = _ => "550 5.7.1 refusé"; // é goes out as one Latin-1 octet, which is no UTF-8 either
        await Accept("alice@localhost", "bob@remote.test");
        var (raw, report) = await ReportToAsync("alice", "delivery-status");
        Assert.Contains("\nDiagnostic-Code: smtp; 550 5.7.1 refus?\n", raw, StringComparison.Ordinal);
        Assert.DoesNotContain("=?", StatusPart(raw), StringComparison.Ordinal);
        Assert.Equal("smtp; 550 5.7.1 refus?", Recipient(report)["Diagnostic-Code"]);
    }

    [Fact]
    public async Task An_SMTPUTF8_message_gets_a_global_report_in_UTF8_without_encoded_words()
    {
        Start(TimeSpan.FromDays(1));
        Sink.Extensions = ["PIPELINING", "SMTPUTF8", "8BITMIME"];
        // The sink reads and writes octets as Latin-1, so this says the UTF-8 address back byte for byte.
        Sink.RcptReply = rcpt => $"550 5.1.1 <{rcpt}>: no such user";
        var m = await Accept(new Envelope("alice@localhost", ["用户@remote.test"])
        {
            SmtpUtf8 = true,
            EightBitMime = true,
            Dsn = [new(DsnNotify.Failure, "utf-8;用户@example.com")],
        }, "Subject: 你好\n\nbody\n");
        var (raw, report) = await ReportToAsync("alice", "global-delivery-status");

        Assert.Contains("Content-Type: message/global-delivery-status", raw, StringComparison.Ordinal);
        Assert.Contains("\nOriginal-Recipient: utf-8;用户@example.com\nFinal-Recipient: utf-8; 用户@remote.test\nAction: failed\n"
            + "Status: 5.1.1\nRemote-MTA: dns; 127.0.0.1\nDiagnostic-Code: smtp; 550 5.1.1 <用户@remote.test>: no such user\n", raw, StringComparison.Ordinal);
        Assert.DoesNotContain("=?", StatusPart(raw), StringComparison.Ordinal); // RFC 6533 §6: no RFC 2047 encoded-words
        Assert.Contains("Content-Type: message/global-headers", raw, StringComparison.Ordinal); // RET unset: headers only
        Assert.Contains("\nSubject: 你好\n", raw, StringComparison.Ordinal);

        Assert.IsType<MessageDeliveryStatus>(Assert.IsType<MultipartReport>(report.Body)[1]);
        var recipient = Recipient(report);
        Assert.Equal("utf-8; 用户@remote.test", recipient["Final-Recipient"]);
        Assert.Equal("smtp; 550 5.1.1 <用户@remote.test>: no such user", recipient["Diagnostic-Code"]);
        await Lines.WaitForAsync($"end msg {m.Id}");
        Assert.Equal(RecipientStatus.Failed, m.States[0].Status);
    }

    [Fact]
    public async Task An_SMTPUTF8_message_returned_whole_comes_back_as_message_global()
    {
        Start(TimeSpan.FromDays(1));
        Sink.Extensions = ["PIPELINING", "SMTPUTF8", "8BITMIME"];
        Sink.DataReply = _ => "554 5.7.1 rejected";
        await Accept(new Envelope("alice@localhost", ["用户@remote.test"]) { SmtpUtf8 = true, EightBitMime = true, Return = DsnReturn.Full },
            "Subject: 你好\n\nbody\n");
        var (raw, report) = await ReportToAsync("alice", "global-delivery-status");
        Assert.Contains("Content-Type: message/global\n", raw, StringComparison.Ordinal);
        Assert.Contains("\nDiagnostic-Code: smtp; 554 5.7.1 rejected\n", raw, StringComparison.Ordinal);
        var returned = Assert.IsType<MessagePart>(Assert.IsType<MultipartReport>(report.Body)[2]);
        Assert.Equal("你好", returned.Message?.Subject);
    }

    /// <summary>The one report delivered to <paramref name="user"/>'s Maildir: its bytes as UTF-8, and parsed, of report type <paramref name="type"/>.</summary>
    private async Task<(string Raw, MimeMessage Report)> ReportToAsync(string user, string type)
    {
        await Lines.WaitForAsync($"delivered to maildir {user}/");
        var file = Assert.Single(Mailbox(user));
        var raw = Encoding.UTF8.GetString(await File.ReadAllBytesAsync(file));
        Assert.Contains($"report-type={type}", raw, StringComparison.Ordinal);
        var report = await MimeMessage.LoadAsync(file);
        Assert.Equal(type, Assert.IsType<MultipartReport>(report.Body).ReportType);
        return (raw, report);
    }

    /// <summary>The raw text of the machine-readable part, from its Content-Type to the next boundary.</summary>
    private static string StatusPart(string raw)
    {
        var start = raw.IndexOf("Content-Type: message/", raw.IndexOf("report-type=", StringComparison.Ordinal), StringComparison.Ordinal);
        return raw[start..raw.IndexOf("\n--", start, StringComparison.Ordinal)];
    }

    /// <summary>The first per-recipient group (RFC 3464 §2.3); MimeKit reads the part's closing blank line as one more, empty.</summary>
    private static HeaderList Recipient(MimeMessage report) =>
        Assert.IsType<MessageDeliveryStatus>(Assert.IsType<MultipartReport>(report.Body)[1]).StatusGroups.Skip(1).First(g => g.Count > 0);
}
