// Mail that does not come in over SMTP meets aliases too, SRS for what an alias forwards elsewhere,
// and mailbox users logging in with the password hash the mailbox map gives them: all through the
// real process, its spool and a sink standing in for the other domains.
using System.Text;

namespace Sluice.EndToEnd;

public sealed class ForwardingTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>One message over a raw socket; returns the reply to its data.</summary>
    private static async Task<string> SendAsync(int port, string sender, string rcpt, string data)
    {
        await using var wire = await SmtpWire.OpenAsync(port);
        Assert.StartsWith("250", await wire.CommandAsync("EHLO client.test"));
        Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync($"MAIL FROM:<{sender}>"));
        Assert.Equal("250 2.1.5 Ok", await wire.CommandAsync($"RCPT TO:<{rcpt}>"));
        Assert.StartsWith("354", await wire.CommandAsync("DATA"));
        return await wire.CommandAsync(data + ".");
    }

    [Fact]
    public async Task A_bounce_to_a_sender_that_is_a_local_alias_reaches_the_aliases_mailbox()
    {
        await using var sluice = await Instance.StartAsync(c => c["Mailboxes"] = new
        {
            Users = new Dictionary<string, object> { ["alice@local.test"] = new { } },
            Aliases = new Dictionary<string, string[]> { ["owner@local.test"] = ["alice@local.test"] },
        });
        sluice.Sink.DataReply = _ => "550 5.7.1 not wanted here";
        Assert.StartsWith("250 2.0.0 Ok", await SendAsync(sluice.Process.SmtpPort, "owner@local.test", "carol@remote.test", "Subject: out\r\n\r\nhello\r\n"), StringComparison.Ordinal);

        var bounce = await sluice.WaitForMaildirAsync("alice");
        Assert.StartsWith("Return-Path: <>\nDelivered-To: alice@local.test\nDelivered-To: owner@local.test\n", bounce, StringComparison.Ordinal);
        Assert.Contains("Subject: Undelivered Mail Returned to Sender", bounce, StringComparison.Ordinal);
        Assert.Contains("Final-Recipient: rfc822; carol@remote.test\nAction: failed\nStatus: 5.7.1\n", bounce, StringComparison.Ordinal);
        Assert.Contains("550 5.7.1 not wanted here", bounce, StringComparison.Ordinal);
        Assert.DoesNotContain(sluice.Process.Log, l => l.Contains(": failure: ", StringComparison.Ordinal) && l.Contains("owner@local.test", StringComparison.Ordinal));
    }

    [Fact]
    public async Task With_SRS_a_forward_leaves_with_a_rewritten_sender_its_bounce_comes_back_to_the_sender_and_forged_ones_are_refused()
    {
        await using var sluice = await Instance.StartAsync(c => c["Mailboxes"] = new
        {
            Users = new Dictionary<string, object> { ["alice@local.test"] = new { } },
            Aliases = new Dictionary<string, string[]> { ["fwd@local.test"] = ["alice@local.test", "carol@remote.test"] },
            Srs = new { Domain = "srs.local.test", Secret = "an SRS secret for the test run" },
        });
        Assert.StartsWith("250 2.0.0 Ok", await SendAsync(sluice.Process.SmtpPort, "sender@client.test", "fwd@local.test", "Subject: fwd\r\n\r\nhello\r\n"), StringComparison.Ordinal);

        // The copy staying here keeps the original sender; the one leaving is SRS-rewritten.
        Assert.StartsWith("Return-Path: <sender@client.test>\n", await sluice.WaitForMaildirAsync("alice"), StringComparison.Ordinal);
        await sluice.Sink.WaitForCountAsync(1, Wait);
        var forwarded = Assert.Single(sluice.Sink.Messages);
        Assert.Equal(["carol@remote.test"], forwarded.Recipients);
        Assert.Matches(@"^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=client\.test=sender@srs\.local\.test$", forwarded.Sender);

        // carol's server bounces it: accepted at RCPT from anyone and sent on to the original sender.
        Assert.StartsWith("250 2.0.0 Ok", await SendAsync(sluice.Process.SmtpPort, "", forwarded.Sender,
            "From: MAILER-DAEMON@remote.test\r\nSubject: Undelivered\r\n\r\ncarol is gone\r\n"), StringComparison.Ordinal);
        await sluice.Sink.WaitForCountAsync(2, Wait);
        var returned = sluice.Sink.Messages.Last();
        Assert.Equal("", returned.Sender);
        Assert.Equal(["sender@client.test"], returned.Recipients);
        Assert.Contains("carol is gone", returned.Data, StringComparison.Ordinal);
        Assert.DoesNotContain("Delivered-To:", returned.Data, StringComparison.Ordinal);

        // A "bounce" to an address we never made, or to nothing at the SRS domain, goes nowhere.
        await using var wire = await SmtpWire.OpenAsync(sluice.Process.SmtpPort);
        Assert.StartsWith("250", await wire.CommandAsync("EHLO remote.test"));
        Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<>"));
        var forged = forwarded.Sender.Replace("=sender@", "=victim@", StringComparison.Ordinal);
        Assert.Equal($"550 5.7.1 <{forged}>: Recipient address rejected: SRS address with a bad hash (forged)", await wire.CommandAsync($"RCPT TO:<{forged}>"));
        Assert.StartsWith("550 5.1.1 <someone@srs.local.test>: ", await wire.CommandAsync("RCPT TO:<someone@srs.local.test>"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_mailbox_user_with_a_password_hash_authenticates_on_submission_and_may_relay()
    {
        const string password = "mailbox password";
        await using var sluice = await Instance.StartAsync(c =>
        {
            Instance.Smtp(c)["Listen"] = Instance.AllRoles;
            Instance.Smtp(c)["RelayNetworks"] = Array.Empty<string>();
            c["Mailboxes"] = new
            {
                Users = new Dictionary<string, object>
                {
                    ["alice@local.test"] = new { PasswordHash = BCrypt.Net.BCrypt.HashPassword(password, 4) },
                    ["bob@local.test"] = new { },
                },
            };
        });
        using var certificate = sluice.LoadCertificate();
        static string Plain(string user, string pass) => Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{pass}"));

        await using var wire = await SmtpWire.OpenAsync(sluice.Process.SubmissionPort);
        await wire.CommandAsync("EHLO wire.client.test");
        Assert.Equal("220 2.0.0 Ready to start TLS", await wire.CommandAsync("STARTTLS"));
        await wire.StartTlsAsync(certificate, Instance.Hostname);
        Assert.Contains("250-AUTH PLAIN LOGIN", await wire.CommandAsync("EHLO wire.client.test"), StringComparison.Ordinal);
        Assert.StartsWith("535 5.7.8 ", await wire.CommandAsync($"AUTH PLAIN {Plain("alice@local.test", "wrong")}"), StringComparison.Ordinal);
        Assert.StartsWith("535 5.7.8 ", await wire.CommandAsync($"AUTH PLAIN {Plain("bob@local.test", password)}"), StringComparison.Ordinal);
        Assert.Equal("235 2.7.0 Authentication successful", await wire.CommandAsync($"AUTH PLAIN {Plain("Alice@LOCAL.test", password)}"));
        Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<alice@local.test>"));
        Assert.Equal("250 2.1.5 Ok", await wire.CommandAsync("RCPT TO:<dan@remote.test>"));
        Assert.StartsWith("354", await wire.CommandAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok", await wire.CommandAsync("Subject: from alice\r\n\r\nhi\r\n."), StringComparison.Ordinal);

        await sluice.Sink.WaitForCountAsync(1, Wait);
        var sent = Assert.Single(sluice.Sink.Messages);
        Assert.Equal(["dan@remote.test"], sent.Recipients);
        Assert.Contains("\t(authenticated as Alice@LOCAL.test)\r\n", sent.Data, StringComparison.Ordinal);
    }
}
