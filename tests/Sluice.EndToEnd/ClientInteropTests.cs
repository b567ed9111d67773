// Mail from real clients (Python's smtplib, swaks, MailKit, our inject verb) over loopback
// sockets reaches a Maildir and an SMTP sink.
using System.Diagnostics;
using MailKit.Net.Smtp;
using MimeKit;
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed class ClientInteropTests
{
    [Fact]
    public async Task Python_smtplib_message_lands_in_the_maildir_with_trace_headers()
    {
        await using var sluice = await Instance.StartAsync();
        var script = $$"""
            import smtplib
            s = smtplib.SMTP('127.0.0.1', {{sluice.Process.SmtpPort}})
            s.ehlo('py.client.test')
            s.sendmail('py@client.test', ['alice@localhost'], 'Subject: from python\r\n\r\nline one\r\n.dotted line\r\n')
            s.quit()
            """;
        var (exit, output) = await RunAsync("python3", ["-c", script]);
        Assert.True(exit == 0, output);
        await sluice.WaitForLogAsync("end msg");
        var file = Assert.Single(sluice.MaildirFiles("alice"));
        var text = await File.ReadAllTextAsync(file);
        Assert.StartsWith("Return-Path: <py@client.test>\nDelivered-To: alice@localhost\nReceived: from py.client.test ([127.0.0.1])", text, StringComparison.Ordinal);
        Assert.EndsWith("Subject: from python\n\nline one\n.dotted line\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Swaks_message_is_relayed_to_the_sink_unchanged_but_for_the_received_header()
    {
        await using var sluice = await Instance.StartAsync();
        var (exit, output) = await RunAsync("swaks", ["--server", $"127.0.0.1:{sluice.Process.SmtpPort}", "--from", "swaks@client.test",
            "--to", "bob@remote.test", "--header", "Subject: via swaks", "--body", "relayed body", "--pipeline"]);
        Assert.True(exit == 0, output);
        await sluice.Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(30));
        var m = Assert.Single(sluice.Sink.Messages);
        Assert.Equal("swaks@client.test", m.Sender);
        Assert.Equal(["bob@remote.test"], m.Recipients);
        Assert.StartsWith("Received: from ", m.Data, StringComparison.Ordinal);
        Assert.Contains("by mx.sluice.test (Sluice) with ESMTP", m.Data, StringComparison.Ordinal);
        Assert.Contains("Subject: via swaks\r\n", m.Data, StringComparison.Ordinal);
        Assert.Contains("relayed body", m.Data, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MailKit_message_to_local_and_remote_recipients_reaches_both()
    {
        await using var sluice = await Instance.StartAsync();
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("mk@client.test"));
        message.To.Add(MailboxAddress.Parse("carol@local.test"));
        message.To.Add(MailboxAddress.Parse("dave@remote.test"));
        message.Subject = "from MailKit";
        message.Body = new TextPart("plain") { Text = "both ways" };
        using (var client = new SmtpClient())
        {
            await client.ConnectAsync("127.0.0.1", sluice.Process.SmtpPort, MailKit.Security.SecureSocketOptions.None);
            await client.SendAsync(message);
            await client.DisconnectAsync(true);
        }
        await sluice.Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(30));
        await sluice.WaitForLogAsync("end msg");
        Assert.Equal(["dave@remote.test"], Assert.Single(sluice.Sink.Messages).Recipients);
        var local = await File.ReadAllTextAsync(Assert.Single(sluice.MaildirFiles("carol")));
        Assert.Contains("Subject: from MailKit", local, StringComparison.Ordinal);
        Assert.Contains("both ways", local, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inject_with_t_takes_recipients_from_headers_and_drops_bcc()
    {
        await using var sluice = await Instance.StartAsync();
        var input = "To: erin@localhost\nBcc: frank@remote.test\nSubject: injected\n\nhello\n";
        // The instance listens on a port chosen at start; the environment override points inject at it.
        var env = new Dictionary<string, string> { ["SLUICE__Smtp__Listen__0"] = $"127.0.0.1:{sluice.Process.SmtpPort}" };
        var (exit, _, stderr) = await SluiceProcess.RunAsync(sluice.Dir.Path, input, env, "inject", "--config", sluice.ConfigFile, "-t", "-i", "-f", "me@client.test");
        Assert.True(exit == 0, stderr);
        await sluice.Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(30));
        await sluice.Process.WaitForLogAsync(l => l.Contains("to local erin@localhost", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        await sluice.WaitForLogAsync("end msg");
        var remote = Assert.Single(sluice.Sink.Messages);
        Assert.Equal(["frank@remote.test"], remote.Recipients);
        Assert.DoesNotContain("Bcc:", remote.Data, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("Message-ID: <", remote.Data, StringComparison.Ordinal);
        Assert.Contains("Date: ", remote.Data, StringComparison.Ordinal);
        Assert.Single(sluice.MaildirFiles("erin"));
    }

    [Fact]
    public async Task Inject_fails_with_tempfail_when_no_server_listens()
    {
        using var dir = new TempDirectory();
        var config = dir.File("c.json");
        await File.WriteAllTextAsync(config, """{ "Smtp": { "Listen": ["127.0.0.1:1"] } }""");
        var (exit, _, stderr) = await SluiceProcess.RunAsync(dir.Path, "Subject: x\n\nx\n", "inject", "--config", config, "-f", "a@b.test", "c@localhost");
        Assert.Equal(75, exit);
        Assert.Contains("connect to 127.0.0.1:1 failed", stderr, StringComparison.Ordinal);
    }

    internal static async Task<(int Exit, string Output)> RunAsync(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        return (p.ExitCode, await stdout + await stderr);
    }
}
