// What each listener role allows, said over a raw socket to the built server: submission wants
// STARTTLS then AUTH, only AUTH opens relaying, port 465 speaks only TLS, and nothing sent
// behind STARTTLS is taken as if it had come over TLS (CVE-2011-0411).
using System.Text;

namespace Sluice.EndToEnd;

public sealed class SubmissionPolicyTests(SubmissionServer server) : IClassFixture<SubmissionServer>
{
    private Instance Sluice => server.Sluice;

    private static string Plain(string user, string password) => Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{password}"));

    [Fact]
    public async Task Submission_asks_for_starttls_then_auth_and_relays_for_the_authenticated_user()
    {
        await using var wire = await SmtpWire.OpenAsync(Sluice.Process.SubmissionPort);
        var ehlo = await wire.CommandAsync("EHLO wire.client.test");
        Assert.Contains("250-STARTTLS", ehlo, StringComparison.Ordinal);
        Assert.DoesNotContain("AUTH", ehlo, StringComparison.Ordinal);
        Assert.Equal("530 5.7.0 Must issue a STARTTLS command first", await wire.CommandAsync("MAIL FROM:<a@client.test>"));
        Assert.Equal("530 5.7.0 Must issue a STARTTLS command first", await wire.CommandAsync($"AUTH PLAIN {Plain(SubmissionServer.User, SubmissionServer.Password)}"));

        Assert.Equal("220 2.0.0 Ready to start TLS", await wire.CommandAsync("STARTTLS"));
        await wire.StartTlsAsync(server.Certificate, Instance.Hostname);
        ehlo = await wire.CommandAsync("EHLO wire.client.test");
        Assert.Contains("250-AUTH PLAIN LOGIN", ehlo, StringComparison.Ordinal);
        Assert.DoesNotContain("STARTTLS", ehlo, StringComparison.Ordinal);
        Assert.Equal("530 5.7.0 Authentication required", await wire.CommandAsync("MAIL FROM:<a@client.test>"));
        Assert.StartsWith("535 5.7.8 ", await wire.CommandAsync($"AUTH PLAIN {Plain(SubmissionServer.User, "wrong password")}"), StringComparison.Ordinal);
        Assert.StartsWith("535 5.7.8 ", await wire.CommandAsync($"AUTH PLAIN {Plain("nobody", SubmissionServer.Password)}"), StringComparison.Ordinal);
        Assert.Equal("235 2.7.0 Authentication successful", await wire.CommandAsync($"AUTH PLAIN {Plain(SubmissionServer.User, SubmissionServer.Password)}"));
        Assert.DoesNotContain("AUTH", await wire.CommandAsync("EHLO wire.client.test"), StringComparison.Ordinal);

        Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<a@client.test>"));
        Assert.Equal("250 2.1.5 Ok", await wire.CommandAsync("RCPT TO:<wired@remote.test>"));
        Assert.StartsWith("354 ", await wire.CommandAsync("DATA"), StringComparison.Ordinal);
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await wire.CommandAsync("Subject: raw submission\r\n\r\nby hand\r\n."), StringComparison.Ordinal);
        Assert.StartsWith("221 ", await wire.CommandAsync("QUIT"), StringComparison.Ordinal);

        await Sluice.WaitForLogAsync($"authenticated as {SubmissionServer.User}");
        await Sluice.WaitForLogAsync($"authentication failed for {SubmissionServer.User}");
        var m = await WaitForSinkAsync("wired@remote.test");
        Assert.StartsWith("Received: from wire.client.test ([127.0.0.1])\r\n\t(using TLSv1.", m.Data, StringComparison.Ordinal);
        Assert.Contains($"\r\n\t(authenticated as {SubmissionServer.User})\r\n\tby mx.sluice.test (Sluice) with ESMTPSA id ", m.Data, StringComparison.Ordinal);
        Assert.Contains("by hand", m.Data, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Auth_login_step_by_step_and_cancelled_auth_on_submission()
    {
        await using var wire = await SmtpWire.OpenAsync(Sluice.Process.SubmissionPort);
        await wire.CommandAsync("EHLO wire.client.test");
        await wire.CommandAsync("STARTTLS");
        await wire.StartTlsAsync(server.Certificate, Instance.Hostname);
        await wire.CommandAsync("EHLO wire.client.test");
        Assert.Equal("334 VXNlcm5hbWU6", await wire.CommandAsync("AUTH LOGIN"));
        Assert.StartsWith("501 ", await wire.CommandAsync("*"), StringComparison.Ordinal);
        Assert.Equal("334 VXNlcm5hbWU6", await wire.CommandAsync("AUTH LOGIN"));
        Assert.Equal("334 UGFzc3dvcmQ6", await wire.CommandAsync(Convert.ToBase64String(Encoding.UTF8.GetBytes(SubmissionServer.User))));
        Assert.Equal("235 2.7.0 Authentication successful", await wire.CommandAsync(Convert.ToBase64String(Encoding.UTF8.GetBytes(SubmissionServer.Password))));
        Assert.StartsWith("503 5.5.1 ", await wire.CommandAsync($"AUTH PLAIN {Plain(SubmissionServer.User, SubmissionServer.Password)}"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mx_port_relays_nothing_for_an_unauthenticated_client_even_over_tls()
    {
        await using var wire = await SmtpWire.OpenAsync(Sluice.Process.SmtpPort);
        var ehlo = await wire.CommandAsync("EHLO wire.client.test");
        Assert.Contains("250-STARTTLS", ehlo, StringComparison.Ordinal);
        Assert.DoesNotContain("AUTH", ehlo, StringComparison.Ordinal);
        Assert.StartsWith("538 5.7.11 ", await wire.CommandAsync($"AUTH PLAIN {Plain(SubmissionServer.User, SubmissionServer.Password)}"), StringComparison.Ordinal);
        Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<a@client.test>"));
        Assert.Equal("554 5.7.1 <victim@remote.test>: Relay access denied", await wire.CommandAsync("RCPT TO:<victim@remote.test>"));
        Assert.StartsWith("554 5.7.1 ", await wire.CommandAsync("RCPT TO:<victim%remote.test@localhost>"), StringComparison.Ordinal);
        Assert.Equal("250 2.1.5 Ok", await wire.CommandAsync("RCPT TO:<someone@localhost>"));
        Assert.Equal("250 2.0.0 Ok", await wire.CommandAsync("RSET"));

        Assert.Equal("220 2.0.0 Ready to start TLS", await wire.CommandAsync("STARTTLS"));
        await wire.StartTlsAsync(server.Certificate, Instance.Hostname);
        Assert.Contains("250-AUTH PLAIN LOGIN", await wire.CommandAsync("EHLO wire.client.test"), StringComparison.Ordinal);
        Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<a@client.test>"));
        Assert.Equal("554 5.7.1 <victim@remote.test>: Relay access denied", await wire.CommandAsync("RCPT TO:<victim@remote.test>"));
        // AUTH is refused in a transaction; after RSET it opens relaying on port 25 as well.
        Assert.StartsWith("503 5.5.1 ", await wire.CommandAsync($"AUTH PLAIN {Plain(SubmissionServer.User, SubmissionServer.Password)}"), StringComparison.Ordinal);
        Assert.Equal("250 2.0.0 Ok", await wire.CommandAsync("RSET"));
        Assert.Equal("235 2.7.0 Authentication successful", await wire.CommandAsync($"AUTH PLAIN {Plain(SubmissionServer.User, SubmissionServer.Password)}"));
        Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<a@client.test>"));
        Assert.Equal("250 2.1.5 Ok", await wire.CommandAsync("RCPT TO:<victim@remote.test>"));
    }

    [Fact]
    public async Task Submissions_port_speaks_tls_from_the_first_byte_and_plaintext_gets_nothing()
    {
        await using (var wire = await SmtpWire.ConnectAsync(Sluice.Process.SubmissionsPort))
        {
            await wire.StartTlsAsync(server.Certificate, Instance.Hostname);
            Assert.Equal("220 mx.sluice.test ESMTP Sluice", await wire.ReadReplyAsync());
            var ehlo = await wire.CommandAsync("EHLO wire.client.test");
            Assert.Contains("250-AUTH PLAIN LOGIN", ehlo, StringComparison.Ordinal);
            Assert.DoesNotContain("STARTTLS", ehlo, StringComparison.Ordinal);
            Assert.Equal("530 5.7.0 Authentication required", await wire.CommandAsync("MAIL FROM:<a@client.test>"));
        }

        await using (var plain = await SmtpWire.ConnectAsync(Sluice.Process.SubmissionsPort))
        {
            await plain.WriteAsync("EHLO plain.client.test\r\nMAIL FROM:<a@client.test>\r\n");
            var said = await plain.ReadToCloseAsync();
            Assert.DoesNotContain("220", said, StringComparison.Ordinal);
            Assert.DoesNotContain("250", said, StringComparison.Ordinal);
            Assert.DoesNotContain("mx.sluice.test", said, StringComparison.Ordinal);
        }
        await Sluice.WaitForLogAsync("TLS handshake failed");
    }

    [Theory]
    [InlineData(SmtpRoleUnderTest.Smtp, "RSET")]
    [InlineData(SmtpRoleUnderTest.Smtp, "MAIL FROM:<injected@client.test>")]
    [InlineData(SmtpRoleUnderTest.Submission, "MAIL FROM:<injected@client.test>")]
    public async Task Commands_sent_with_starttls_are_dropped_not_run_over_tls(SmtpRoleUnderTest role, string injected)
    {
        var port = role == SmtpRoleUnderTest.Smtp ? Sluice.Process.SmtpPort : Sluice.Process.SubmissionPort;
        await using var wire = await SmtpWire.OpenAsync(port);
        await wire.CommandAsync("EHLO wire.client.test");
        // One write: a man in the middle appends his command to the client's STARTTLS.
        await wire.WriteAsync($"STARTTLS\r\n{injected}\r\n");
        Assert.Equal("220 2.0.0 Ready to start TLS", await wire.ReadReplyAsync());
        await wire.StartTlsAsync(server.Certificate, Instance.Hostname);
        // The first reply over TLS answers our EHLO: nothing was queued for the injected command.
        var first = await wire.CommandAsync("EHLO tls.client.test");
        Assert.StartsWith("250-mx.sluice.test\n", first, StringComparison.Ordinal);
        // A MAIL taken from the plaintext would make ours a nested MAIL (503); under submission it would be 530.
        if (role == SmtpRoleUnderTest.Smtp)
        {
            Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<real@client.test>"));
            Assert.Equal("250 2.1.5 Ok", await wire.CommandAsync("RCPT TO:<injectcheck@localhost>"));
        }
        Assert.Equal("250 2.0.0 Ok", await wire.CommandAsync("NOOP"));
        Assert.Equal(0, wire.Buffered);
    }

    public enum SmtpRoleUnderTest { Smtp, Submission }

    private async Task<Testing.SmtpSink.Received> WaitForSinkAsync(string recipient)
    {
        for (var count = 1; ; count++)
        {
            await Sluice.Sink.WaitForCountAsync(count, TimeSpan.FromSeconds(30));
            if (Sluice.Sink.Messages.FirstOrDefault(m => m.Recipients.Contains(recipient)) is { } found) return found;
        }
    }
}
