// STARTTLS, implicit TLS, AUTH and SMTPUTF8 as Python's smtplib and swaks speak them, against the
// built server: each message is followed to the Maildir or the sink, where the trace header tells.
namespace Sluice.EndToEnd;

public sealed class TlsClientInteropTests(SubmissionServer server) : IClassFixture<SubmissionServer>
{
    private Instance Sluice => server.Sluice;

    /// <summary>A context that trusts only the server's self-signed certificate and checks the name given.</summary>
    private const string PythonTls = """
        import smtplib, ssl, sys
        class Named(ssl.SSLContext):
            # smtplib passes the address it connected to (127.0.0.1) as the name to check; use the server's.
            def wrap_socket(self, sock, *args, server_hostname=None, **kwargs):
                return super().wrap_socket(sock, *args, server_hostname=NAME, **kwargs)
        def context(name):
            global NAME
            NAME = name
            ctx = Named(ssl.PROTOCOL_TLS_CLIENT)
            assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
            ctx.load_verify_locations(cafile=CERT)
            return ctx

        """;

    [Fact]
    public async Task Python_starttls_checks_the_self_signed_certificate_and_its_name_and_the_message_is_traced_as_ESMTPS()
    {
        var script = PythonTls + """
            port, CERT = int(sys.argv[1]), sys.argv[2]
            # A client checking the name finds the server is not some other host ...
            s = smtplib.SMTP('127.0.0.1', port)
            s.ehlo('py.client.test')
            try:
                s.starttls(context=context('other.example'))
                print('wrong name accepted')
            except ssl.SSLCertVerificationError as e:
                print('wrong name refused:', e.verify_message)
            s.close()
            # ... and is the one it was told to trust.
            s = smtplib.SMTP('127.0.0.1', port)
            s.ehlo('py.client.test')
            code, _ = s.starttls(context=context('mx.sluice.test'))
            print('starttls', code, s.sock.version())
            s.ehlo('py.client.test')
            s.sendmail('py@client.test', ['tlsbob@localhost'], 'Subject: over tls\r\n\r\nsecret\r\n')
            s.quit()
            """;
        var (exit, output) = await ClientInteropTests.RunAsync("python3", ["-c", script, Sluice.Process.SmtpPort.ToString(), Sluice.CertificateFile]);
        Assert.True(exit == 0, output);
        Assert.Contains("wrong name refused: Hostname mismatch", output, StringComparison.Ordinal);
        Assert.Contains("starttls 220 TLSv1.", output, StringComparison.Ordinal);
        var text = await Sluice.WaitForMaildirAsync("tlsbob");
        Assert.Contains("Received: from py.client.test ([127.0.0.1])\n\t(using TLSv1.", text, StringComparison.Ordinal);
        Assert.Contains("by mx.sluice.test (Sluice) with ESMTPS id ", text, StringComparison.Ordinal);
        Assert.EndsWith("Subject: over tls\n\nsecret\n", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("PLAIN", "plainrcpt")]
    [InlineData("LOGIN", "loginrcpt")]
    public async Task Python_authenticates_after_starttls_on_submission_and_may_then_relay(string mechanism, string local)
    {
        // PLAIN as smtplib.login() sends it (initial response on the AUTH line); LOGIN step by step,
        // answering the server's 334 challenges.
        var script = PythonTls + """
            port, CERT, user, password, mechanism, local = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
            s = smtplib.SMTP('127.0.0.1', port)
            s.ehlo('py.client.test')
            print('auth before tls:', s.has_extn('auth'))
            s.starttls(context=context('mx.sluice.test'))
            s.ehlo('py.client.test')
            print('auth after tls:', s.esmtp_features.get('auth', '').strip())
            s.user, s.password = user, password
            if mechanism == 'PLAIN':
                code, text = s.auth('PLAIN', s.auth_plain, initial_response_ok=True)
            else:
                code, text = s.auth('LOGIN', s.auth_login, initial_response_ok=False)
            print('auth', code, text.decode())
            refused = s.sendmail('py@client.test', ['far@remote.test', local + '@localhost'], 'Subject: submitted\r\n\r\nvia ' + mechanism + '\r\n')
            print('refused', refused)
            s.quit()
            """;
        var sinkBefore = Sluice.Sink.Messages.Count;
        var (exit, output) = await ClientInteropTests.RunAsync("python3",
            ["-c", script, Sluice.Process.SubmissionPort.ToString(), Sluice.CertificateFile, SubmissionServer.User, SubmissionServer.Password, mechanism, local]);
        Assert.True(exit == 0, output);
        Assert.Contains("auth before tls: False", output, StringComparison.Ordinal);
        Assert.Contains("auth after tls: PLAIN LOGIN", output, StringComparison.Ordinal);
        Assert.Contains("auth 235 2.7.0 Authentication successful", output, StringComparison.Ordinal);
        Assert.Contains("refused {}", output, StringComparison.Ordinal);
        var text = await Sluice.WaitForMaildirAsync(local);
        Assert.Contains($"\t(authenticated as {SubmissionServer.User})\n\tby mx.sluice.test (Sluice) with ESMTPSA id ", text, StringComparison.Ordinal);
        Assert.EndsWith($"via {mechanism}\n", text, StringComparison.Ordinal);
        await Sluice.Sink.WaitForCountAsync(sinkBefore + 1, TimeSpan.FromSeconds(30));
        Assert.Contains(Sluice.Sink.Messages, m => m.Recipients.SequenceEqual(["far@remote.test"]) && m.Data.Contains($"via {mechanism}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Python_smtputf8_message_to_a_utf8_local_part_reaches_its_maildir()
    {
        var script = """
            import smtplib, sys
            from email.message import EmailMessage
            s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
            s.ehlo('py.client.test')
            print('smtputf8 offered:', s.has_extn('smtputf8'))
            s.sendmail('josé@client.test', ['jürgen@local.test'], 'Subject: grüße\r\n\r\nnaïve body\r\n'.encode('utf-8'), mail_options=['SMTPUTF8'])
            # send_message asks for SMTPUTF8 by itself when an address needs it.
            m = EmailMessage()
            m['From'], m['To'], m['Subject'] = 'zoë@client.test', 'łukasz@localhost', 'dzień dobry'
            m.set_content('cześć')
            s.send_message(m)
            s.quit()
            """;
        var (exit, output) = await ClientInteropTests.RunAsync("python3", ["-c", script, Sluice.Process.SmtpPort.ToString()]);
        Assert.True(exit == 0, output);
        Assert.Contains("smtputf8 offered: True", output, StringComparison.Ordinal);

        var text = await Sluice.WaitForMaildirAsync("jürgen");
        Assert.StartsWith("Return-Path: <josé@client.test>\nDelivered-To: jürgen@local.test\nReceived: from py.client.test", text, StringComparison.Ordinal);
        Assert.Contains("with UTF8SMTP id ", text, StringComparison.Ordinal);
        Assert.Contains("for <jürgen@local.test>", text, StringComparison.Ordinal);
        Assert.EndsWith("Subject: grüße\n\nnaïve body\n", text, StringComparison.Ordinal);

        var second = await Sluice.WaitForMaildirAsync("łukasz");
        Assert.StartsWith("Return-Path: <zoë@client.test>\nDelivered-To: łukasz@localhost\n", second, StringComparison.Ordinal);
        Assert.Contains("Subject: dzień dobry\n", second, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Swaks_starttls_with_verified_certificate_delivers_locally()
    {
        var (exit, output) = await ClientInteropTests.RunAsync("swaks", ["--server", $"127.0.0.1:{Sluice.Process.SmtpPort}", "--tls",
            "--tls-verify", "--tls-ca-path", Sluice.CertificateFile, "--ehlo", "swaks.client.test",
            "--from", "swaks@client.test", "--to", "swakstls@localhost", "--header", "Subject: swaks tls", "--body", "tls body"]);
        Assert.True(exit == 0, output);
        Assert.Contains("TLS started", output, StringComparison.Ordinal);
        var text = await Sluice.WaitForMaildirAsync("swakstls");
        Assert.Contains("with ESMTPS id ", text, StringComparison.Ordinal);
        Assert.Contains("Subject: swaks tls\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Swaks_auth_plain_over_starttls_on_submission_relays_with_the_user_in_the_trace()
    {
        var sinkBefore = Sluice.Sink.Messages.Count;
        var (exit, output) = await ClientInteropTests.RunAsync("swaks", ["--server", $"127.0.0.1:{Sluice.Process.SubmissionPort}", "--tls",
            "--tls-verify", "--tls-ca-path", Sluice.CertificateFile, "--ehlo", "swaks.client.test",
            "--auth", "PLAIN", "--auth-user", SubmissionServer.User, "--auth-password", SubmissionServer.Password,
            "--from", "swaks@client.test", "--to", "swaksauth@remote.test", "--header", "Subject: swaks auth", "--body", "submitted body"]);
        Assert.True(exit == 0, output);
        Assert.Contains("235 2.7.0 Authentication successful", output, StringComparison.Ordinal);
        await Sluice.Sink.WaitForCountAsync(sinkBefore + 1, TimeSpan.FromSeconds(30));
        var m = Assert.Single(Sluice.Sink.Messages, m => m.Recipients.SequenceEqual(["swaksauth@remote.test"]));
        Assert.StartsWith("Received: from swaks.client.test ([127.0.0.1])\r\n\t(using TLSv1.", m.Data, StringComparison.Ordinal);
        Assert.Contains($"\t(authenticated as {SubmissionServer.User})\r\n\tby mx.sluice.test (Sluice) with ESMTPSA id ", m.Data, StringComparison.Ordinal);
        Assert.Contains("submitted body", m.Data, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Swaks_implicit_tls_on_submissions_authenticates_and_delivers()
    {
        var (exit, output) = await ClientInteropTests.RunAsync("swaks", ["--server", $"127.0.0.1:{Sluice.Process.SubmissionsPort}", "--tlsc",
            "--tls-verify", "--tls-ca-path", Sluice.CertificateFile, "--ehlo", "swaks.client.test",
            "--auth", "LOGIN", "--auth-user", SubmissionServer.User, "--auth-password", SubmissionServer.Password,
            "--from", "swaks@client.test", "--to", "swaks465@localhost", "--header", "Subject: swaks 465", "--body", "implicit tls"]);
        Assert.True(exit == 0, output);
        Assert.Contains("<~  220 mx.sluice.test ESMTP", output, StringComparison.Ordinal); // the greeting came over TLS
        var text = await Sluice.WaitForMaildirAsync("swaks465");
        Assert.Contains("with ESMTPSA id ", text, StringComparison.Ordinal);
        Assert.Contains("implicit tls", text, StringComparison.Ordinal);
    }
}
