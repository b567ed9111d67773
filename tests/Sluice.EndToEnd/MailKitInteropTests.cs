// MailKit's SmtpClient against the built server: PIPELINING, CHUNKING (BDAT), DSN, STARTTLS with a
// pinned certificate, AUTH on submission and implicit TLS; what went over the wire is logged per write.
using System.Net.Sockets;
using System.Text;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Sluice.EndToEnd;

public sealed class MailKitInteropTests(SubmissionServer server) : IClassFixture<SubmissionServer>
{
    private Instance Sluice => server.Sluice;

    /// <summary>About 90 KB: many reads on the server's side, each ending mid-line; lines that start with a dot.</summary>
    private static readonly string LongBody = string.Concat(Enumerable.Range(0, 2000).Select(i => $"line {i} comes before a dotted one\r\n.dot {i}\r\n"));

    [Fact]
    public async Task Pipelining_sends_the_envelope_in_one_write_and_every_recipient_is_delivered()
    {
        var log = new WireLog();
        using (var client = new SmtpClient(log))
        {
            await client.ConnectAsync("127.0.0.1", Sluice.Process.SmtpPort, SecureSocketOptions.None);
            Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.Pipelining));
            await client.SendAsync(Message("mk@client.test", ["pipe1@localhost", "pipe2@localhost", "pipe3@local.test"], "pipelined", LongBody));
            await client.DisconnectAsync(true);
        }
        // MAIL and every RCPT left in a single write, and a single read took all four replies.
        Assert.Contains(log.Writes, w => w.Contains("MAIL FROM:<mk@client.test>", StringComparison.Ordinal)
            && w.Contains("RCPT TO:<pipe1@localhost>", StringComparison.Ordinal) && w.Contains("RCPT TO:<pipe3@local.test>", StringComparison.Ordinal));
        Assert.Contains(log.Writes, w => w.StartsWith("DATA\r\n", StringComparison.Ordinal));
        foreach (var user in new[] { "pipe1", "pipe2", "pipe3" })
        {
            var text = await Sluice.WaitForMaildirAsync(user);
            Assert.Contains("Subject: pipelined\n", text, StringComparison.Ordinal);
            // Dot-stuffed on the wire, unstuffed once, every line once.
            Assert.Equal(LongBody.Replace("\r\n", "\n", StringComparison.Ordinal), BodyOf(text));
        }
    }

    [Fact]
    public async Task Chunking_sends_the_message_with_bdat_and_it_arrives_intact()
    {
        var log = new WireLog();
        using (var client = new BdatClient(log))
        {
            await client.ConnectAsync("127.0.0.1", Sluice.Process.SmtpPort, SecureSocketOptions.None);
            Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.Chunking));
            await client.SendAsync(Message("mk@client.test", ["chunky@localhost"], "chunked", LongBody));
            await client.DisconnectAsync(true);
        }
        var commands = log.Writes.SelectMany(w => w.Split("\r\n")).ToList();
        Assert.Contains(commands, c => c.StartsWith("BDAT ", StringComparison.Ordinal) && c.EndsWith(" LAST", StringComparison.Ordinal));
        Assert.DoesNotContain("DATA", commands);
        Assert.Contains(log.Reads, r => r.Contains("250 2.0.0 Ok: queued as ", StringComparison.Ordinal));
        Assert.DoesNotContain(log.Writes, w => w.Contains("\r\n..dot", StringComparison.Ordinal)); // BDAT is not dot-stuffed
        var text = await Sluice.WaitForMaildirAsync("chunky");
        Assert.Contains("Subject: chunked\n", text, StringComparison.Ordinal);
        Assert.Equal(LongBody.Replace("\r\n", "\n", StringComparison.Ordinal), BodyOf(text));
    }

    [Fact]
    public async Task Dsn_parameters_are_accepted_and_kept_so_the_success_report_carries_the_envelope_id()
    {
        var log = new WireLog();
        using (var client = new DsnClient(log, "env-42+x"))
        {
            await client.ConnectAsync("127.0.0.1", Sluice.Process.SmtpPort, SecureSocketOptions.None);
            Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.Dsn));
            await client.SendAsync(Message("dsnsender@localhost", ["dsnrcpt@localhost"], "wants a receipt"));
            await client.DisconnectAsync(true);
        }
        Assert.Contains(log.Writes, w => w.Contains("MAIL FROM:<dsnsender@localhost> SIZE=", StringComparison.Ordinal) && w.Contains(" ENVID=env-42+2Bx\r\n", StringComparison.Ordinal));
        Assert.Contains(log.Writes, w => w.Contains("RCPT TO:<dsnrcpt@localhost> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;dsnrcpt@localhost", StringComparison.Ordinal));
        Assert.Contains("Subject: wants a receipt", await Sluice.WaitForMaildirAsync("dsnrcpt"), StringComparison.Ordinal);
        // RFC 3461: the server kept NOTIFY and ENVID, so the sender is told of the delivery, by envelope id.
        var report = await Sluice.WaitForMaildirAsync("dsnsender");
        Assert.Contains("Original-Envelope-Id: env-42+x\n", report, StringComparison.Ordinal); // decoded from xtext
        Assert.Contains("Action: delivered", report, StringComparison.Ordinal);
        Assert.Contains("Final-Recipient: rfc822; dsnrcpt@localhost", report, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Starttls_with_a_pinned_certificate_then_auth_on_submission_relays()
    {
        var sinkBefore = Sluice.Sink.Messages.Count;
        using (var client = new SmtpClient { ServerCertificateValidationCallback = SubmissionServer.Pinned(server.Certificate) })
        {
            // Connected by address, introduced by name: the name is what the certificate is checked against.
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(System.Net.IPAddress.Loopback, Sluice.Process.SubmissionPort);
            await client.ConnectAsync(socket, Instance.Hostname, Sluice.Process.SubmissionPort, SecureSocketOptions.StartTls);
            Assert.True(client.IsEncrypted);
            Assert.Contains("PLAIN", client.AuthenticationMechanisms);
            await client.AuthenticateAsync(SubmissionServer.User, SubmissionServer.Password);
            await client.SendAsync(Message("mk@client.test", ["mkremote@remote.test"], "MailKit submission"));
            await client.DisconnectAsync(true);
        }
        await Sluice.Sink.WaitForCountAsync(sinkBefore + 1, TimeSpan.FromSeconds(30));
        var m = Assert.Single(Sluice.Sink.Messages, m => m.Recipients.SequenceEqual(["mkremote@remote.test"]));
        Assert.Contains($"(authenticated as {SubmissionServer.User})", m.Data, StringComparison.Ordinal);
        Assert.Contains("with ESMTPSA id ", m.Data, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Starttls_fails_for_a_client_expecting_another_name()
    {
        using var client = new SmtpClient { ServerCertificateValidationCallback = SubmissionServer.Pinned(server.Certificate) };
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(System.Net.IPAddress.Loopback, Sluice.Process.SubmissionPort);
        await Assert.ThrowsAsync<SslHandshakeException>(() => client.ConnectAsync(socket, "other.example", Sluice.Process.SubmissionPort, SecureSocketOptions.StartTls));
    }

    [Fact]
    public async Task Implicit_tls_on_submissions_authenticates_and_delivers()
    {
        using (var client = new SmtpClient { ServerCertificateValidationCallback = SubmissionServer.Pinned(server.Certificate) })
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(System.Net.IPAddress.Loopback, Sluice.Process.SubmissionsPort);
            await client.ConnectAsync(socket, Instance.Hostname, Sluice.Process.SubmissionsPort, SecureSocketOptions.SslOnConnect);
            Assert.True(client.IsEncrypted);
            await client.AuthenticateAsync(SubmissionServer.User, SubmissionServer.Password);
            await client.SendAsync(Message("mk@client.test", ["mk465@localhost"], "over 465"));
            await client.DisconnectAsync(true);
        }
        var text = await Sluice.WaitForMaildirAsync("mk465");
        Assert.Contains("with ESMTPSA id ", text, StringComparison.Ordinal);
        Assert.Contains("Subject: over 465", text, StringComparison.Ordinal);
    }

    /// <summary>What follows the header of a Maildir file.</summary>
    private static string BodyOf(string text) => text[(text.IndexOf("\n\n", StringComparison.Ordinal) + 2)..];

    private static MimeMessage Message(string from, string[] to, string subject, string body = "hello")
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(from));
        foreach (var t in to) message.To.Add(MailboxAddress.Parse(t));
        message.Subject = subject;
        message.Body = new TextPart("plain") { Text = body };
        return message;
    }

    /// <summary>MailKit sends with BDAT when the server offers CHUNKING and the client prefers it.</summary>
    private sealed class BdatClient(IProtocolLogger log) : SmtpClient(log)
    {
        protected override bool PreferSendAsBinaryData => true;
    }

    /// <summary>Asks for success and failure notices for every recipient, under an envelope id (RFC 3461).</summary>
    private sealed class DsnClient(IProtocolLogger log, string envelopeId) : SmtpClient(log)
    {
        protected override string GetEnvelopeId(MimeMessage message) => envelopeId;

        protected override DeliveryStatusNotification? GetDeliveryStatusNotifications(MimeMessage message, MailboxAddress mailbox) =>
            DeliveryStatusNotification.Success | DeliveryStatusNotification.Failure;
    }

    /// <summary>Keeps each client write and server read whole, so a test can see what went in one write.</summary>
    private sealed class WireLog : IProtocolLogger
    {
        public List<string> Writes { get; } = [];
        public List<string> Reads { get; } = [];
        public IAuthenticationSecretDetector? AuthenticationSecretDetector { get; set; }

        public void LogConnect(Uri uri) { }
        public void LogClient(byte[] buffer, int offset, int count) { lock (Writes) Writes.Add(Encoding.UTF8.GetString(buffer, offset, count)); }
        public void LogServer(byte[] buffer, int offset, int count) { lock (Reads) Reads.Add(Encoding.UTF8.GetString(buffer, offset, count)); }
        public void Dispose() { }
    }
}
