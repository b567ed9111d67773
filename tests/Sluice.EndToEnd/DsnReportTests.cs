// Bounces from the real process, through real sockets and a real DNS server: mail follows MX
// records (unbound) to a sink that refuses a recipient, and each sender's bounce lands in its
// Maildir. The report quotes the refusal itself with the MX host's name (RFC 3464 §2.3.5,
// §2.3.6); what we decide ourselves (no MX, no SMTPUTF8 at the next hop) is "X-Sluice;". An
// SMTPUTF8 message's report is RFC 6533's. The delivery log and `queue list` keep "HOST said: …".
using System.Text;
using MimeKit;
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed class DsnReportTests
{
    /// <param name="workers">Delivery.Workers: 0 delivers in the server, 1 in a child process whose outcomes cross a socket.</param>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public async Task Bounces_quote_the_refusing_MX_host_and_its_reply_and_mark_our_own_errors_as_ours(int workers)
    {
        await using var dns = await UnboundServer.StartAsync(
        [
            "mx.e2e.test. 300 IN MX 10 in.mx.e2e.test.", "in.mx.e2e.test. 300 IN A 127.0.0.1",
            "nomx.e2e.test. 300 IN TXT \"no mail here\"", // the name exists, with neither MX nor address
        ], []);
        await using var mx = new SmtpSink();
        mx.RcptReply = rcpt => rcpt switch
        {
            "x@mx.e2e.test" => "550 5.1.1 <x@mx.e2e.test>: no such user",
            "later@mx.e2e.test" => "451 4.2.0 <later@mx.e2e.test>: try later",
            _ => null,
        };
        await using var sluice = await Instance.StartAsync(c =>
        {
            c.Remove("Routes");
            c["Dns"] = new { Servers = new[] { dns.Address } };
            c["Delivery"] = new { Port = mx.Port, Workers = workers };
        });
        var peer = $"in.mx.e2e.test[127.0.0.1]:{mx.Port}";
        if (workers > 0) await sluice.WaitForLogAsync("delivery: worker 1 (pid ");

        await InjectAsync(sluice, "alice@local.test", "x@mx.e2e.test");
        var refused = Unfolded(await sluice.WaitForMaildirAsync("alice"));
        Assert.Contains("\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; in.mx.e2e.test\n"
            + "Diagnostic-Code: smtp; 550 5.1.1 <x@mx.e2e.test>: no such user\n", refused, StringComparison.Ordinal);
        var recipient = Recipient(refused, "delivery-status");
        Assert.Equal("rfc822; x@mx.e2e.test", recipient["Final-Recipient"]);
        Assert.Equal("dns; in.mx.e2e.test", recipient["Remote-MTA"]);
        Assert.Equal("smtp; 550 5.1.1 <x@mx.e2e.test>: no such user", recipient["Diagnostic-Code"]);
        await sluice.WaitForLogAsync($"failure: {peer} said: 550 5.1.1 <x@mx.e2e.test>: no such user");

        await InjectAsync(sluice, "bob@local.test", "y@nomx.e2e.test");
        var noMx = Unfolded(await sluice.WaitForMaildirAsync("bob"));
        Assert.Contains("\nStatus: 5.1.2\nDiagnostic-Code: X-Sluice; 550 5.1.2 nomx.e2e.test has no MX and no address record\n", noMx, StringComparison.Ordinal);
        Assert.DoesNotContain("Remote-MTA", noMx, StringComparison.Ordinal);
        Assert.Null(Recipient(noMx, "delivery-status")["Remote-MTA"]);

        // SMTPUTF8, to a next hop without it: our 5.6.7, in an RFC 6533 report with the UTF-8 address as it is.
        await using (var wire = await SmtpWire.OpenAsync(sluice.Process.SmtpPort))
        {
            Assert.StartsWith("250", await wire.CommandAsync("EHLO client.test"), StringComparison.Ordinal);
            Assert.StartsWith("250", await wire.CommandAsync("MAIL FROM:<carol@local.test> SMTPUTF8 BODY=8BITMIME"), StringComparison.Ordinal);
            Assert.StartsWith("250", await wire.CommandAsync("RCPT TO:<用户@mx.e2e.test>"), StringComparison.Ordinal);
            Assert.StartsWith("354", await wire.CommandAsync("DATA"), StringComparison.Ordinal);
            Assert.StartsWith("250", await wire.CommandAsync("From: <carol@local.test>\r\nTo: <用户@mx.e2e.test>\r\nSubject: 你好\r\n\r\nhi\r\n."), StringComparison.Ordinal);
        }
        var utf8Report = Unfolded(await sluice.WaitForMaildirAsync("carol"));
        Assert.Contains("report-type=global-delivery-status", utf8Report, StringComparison.Ordinal);
        Assert.Contains("Content-Type: message/global-delivery-status\n", utf8Report, StringComparison.Ordinal);
        Assert.Contains("\nFinal-Recipient: utf-8; 用户@mx.e2e.test\nAction: failed\nStatus: 5.6.7\n"
            + $"Diagnostic-Code: X-Sluice; 553 5.6.7 SMTPUTF8 required but not offered by {peer}\n", utf8Report, StringComparison.Ordinal);
        Assert.Contains("Content-Type: message/global-headers\n", utf8Report, StringComparison.Ordinal);
        Assert.DoesNotContain("=?", utf8Report, StringComparison.Ordinal); // no RFC 2047 encoded-words anywhere
        Assert.Equal("utf-8; 用户@mx.e2e.test", Recipient(utf8Report, "global-delivery-status")["Final-Recipient"]);

        // A deferral: the log and the queue's view of the last reply still name the host and address it came from.
        await InjectAsync(sluice, "dave@local.test", "later@mx.e2e.test");
        await sluice.WaitForLogAsync($"deferral: {peer} said: 451 4.2.0 <later@mx.e2e.test>: try later");
        var list = await sluice.RunVerbAsync("queue", "list");
        Assert.True(list.Exit == 0, list.Stderr);
        Assert.Contains($"last-error \"{peer} said: 451 4.2.0 <later@mx.e2e.test>: try later\"", list.Stdout, StringComparison.Ordinal);
    }

    /// <summary>A report with its long fields unfolded (RFC 5322 §2.2.3), so that each reads as one line.</summary>
    private static string Unfolded(string report) => report.Replace("\n ", " ", StringComparison.Ordinal).Replace("\n\t", "\t", StringComparison.Ordinal);

    private static async Task InjectAsync(Instance sluice, string sender, string rcpt)
    {
        var env = new Dictionary<string, string> { ["SLUICE__Smtp__Listen__0"] = $"127.0.0.1:{sluice.Process.SmtpPort}" };
        var (exit, _, stderr) = await SluiceProcess.RunAsync(sluice.Dir.Path, $"Subject: to {rcpt}\n\nhello\n", env,
            "inject", "--config", sluice.ConfigFile, "-f", sender, rcpt);
        Assert.True(exit == 0, stderr);
    }

    /// <summary>The report's first per-recipient group, parsed by MimeKit; the report type must be <paramref name="type"/>.</summary>
    private static HeaderList Recipient(string report, string type)
    {
        var message = MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(report)));
        var parts = Assert.IsType<MultipartReport>(message.Body);
        Assert.Equal(type, parts.ReportType);
        return Assert.IsType<MessageDeliveryStatus>(parts[1]).StatusGroups.Skip(1).First(g => g.Count > 0);
    }
}
