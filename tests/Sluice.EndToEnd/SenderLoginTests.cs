// Sender policy for authenticated users over a raw socket to the built server: a login sends only as
// itself (when an address) and what Smtp.SenderLogins lists (553 5.7.1 otherwise), at most
// Smtp.LoginRatePerHour messages an hour (450 4.7.1), and with HideAuthenticatedUser its name stays out
// of the Received header. Unauthenticated sessions are governed by the relay policy alone.
using System.Text;

namespace Sluice.EndToEnd;

public sealed class SenderLoginTests(SenderLoginTests.Server server) : IClassFixture<SenderLoginTests.Server>
{
    private const string Password = "correct horse battery";
    /// <summary>Above what the other tests send under one login.</summary>
    private const int RatePerHour = 10;
    private Instance Sluice => server.Sluice;

    public sealed class Server : IAsyncLifetime
    {
        internal Instance Sluice { get; private set; } = null!;
        internal System.Security.Cryptography.X509Certificates.X509Certificate2 Certificate { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Sluice = await Instance.StartAsync(c =>
            {
                Instance.Smtp(c)["Listen"] = Instance.AllRoles;
                Instance.Smtp(c)["RelayNetworks"] = Array.Empty<string>();
                Instance.Smtp(c)["SenderLogins"] = new Dictionary<string, string[]>
                {
                    ["alice"] = ["bob@client.test", "@Partner.TEST"],
                    ["relay-app"] = ["*"],
                };
                Instance.Smtp(c)["LoginRatePerHour"] = RatePerHour;
                Instance.Smtp(c)["HideAuthenticatedUser"] = true;
                c["Mailboxes"] = new
                {
                    Users = new Dictionary<string, object>
                    {
                        ["dora@local.test"] = new { PasswordHash = BCrypt.Net.BCrypt.HashPassword(Password, 4) },
                    },
                };
            });
            Certificate = Sluice.LoadCertificate();
            foreach (var user in new[] { "alice", "relay-app", "ratey", "other" }) await Sluice.AddUserAsync(user, Password);
        }

        public async Task DisposeAsync()
        {
            Certificate?.Dispose();
            if (Sluice is not null) await Sluice.DisposeAsync();
        }
    }

    private async Task<SmtpWire> LoggedInAsync(string user)
    {
        var wire = await SmtpWire.OpenAsync(Sluice.Process.SubmissionPort);
        await wire.CommandAsync("EHLO wire.client.test");
        Assert.Equal("220 2.0.0 Ready to start TLS", await wire.CommandAsync("STARTTLS"));
        await wire.StartTlsAsync(server.Certificate, Instance.Hostname);
        await wire.CommandAsync("EHLO wire.client.test");
        var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{Password}"));
        Assert.Equal("235 2.7.0 Authentication successful", await wire.CommandAsync($"AUTH PLAIN {plain}"));
        return wire;
    }

    [Fact]
    public async Task A_login_sends_as_its_listed_addresses_and_domains_and_nothing_else()
    {
        await using var wire = await LoggedInAsync("alice");
        // Listed address, in any case and quoted form (the canonical local part), and any address of a listed @domain.
        foreach (var sender in new[] { "bob@client.test", "BOB@Client.Test", "\"bob\"@client.test", "anyone@partner.test", "x@PARTNER.test", "" })
        {
            Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync($"MAIL FROM:<{sender}>"));
            Assert.Equal("250 2.0.0 Ok", await wire.CommandAsync("RSET"));
        }
        Assert.Equal("553 5.7.1 <mallory@client.test>: Sender address rejected: not owned by user alice", await wire.CommandAsync("MAIL FROM:<mallory@client.test>"));
        Assert.Equal("553 5.7.1 <bob@sub.partner.test>: Sender address rejected: not owned by user alice", await wire.CommandAsync("MAIL FROM:<bob@sub.partner.test>"));
        // "alice" is no address, so its own name gives it nothing.
        Assert.Equal("553 5.7.1 <alice@localhost>: Sender address rejected: not owned by user alice", await wire.CommandAsync("MAIL FROM:<alice@localhost>"));
        Assert.Equal("503 5.5.1 Error: need MAIL command", await wire.CommandAsync("RCPT TO:<someone@remote.test>"));
        await Sluice.WaitForLogAsync("alice may not send as <mallory@client.test> (Smtp.SenderLogins)");
    }

    [Fact]
    public async Task A_login_that_is_an_address_sends_as_itself_only_and_a_star_entry_as_anyone()
    {
        await using (var wire = await LoggedInAsync("dora@local.test"))
        {
            Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<Dora@LOCAL.test>"));
            Assert.Equal("250 2.0.0 Ok", await wire.CommandAsync("RSET"));
            Assert.Equal("553 5.7.1 <erin@local.test>: Sender address rejected: not owned by user dora@local.test", await wire.CommandAsync("MAIL FROM:<erin@local.test>"));
        }
        await using (var wire = await LoggedInAsync("relay-app"))
            Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<whoever@anywhere.test>"));
    }

    [Fact]
    public async Task An_unauthenticated_session_is_left_to_the_relay_policy()
    {
        await using var wire = await SmtpWire.OpenAsync(Sluice.Process.SmtpPort);
        await wire.CommandAsync("EHLO wire.client.test");
        Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<mallory@client.test>"));
        Assert.Equal("250 2.1.5 Ok", await wire.CommandAsync("RCPT TO:<someone@localhost>"));
    }

    [Fact]
    public async Task A_login_past_its_hourly_rate_gets_450_in_any_session_and_others_are_not_held_back()
    {
        await using (var wire = await LoggedInAsync("ratey"))
        {
            for (var i = 0; i < RatePerHour; i++)
            {
                Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<>"));
                Assert.Equal("250 2.0.0 Ok", await wire.CommandAsync("RSET"));
            }
            Assert.Equal("450 4.7.1 Error: too much mail from user ratey this hour, try again later", await wire.CommandAsync("MAIL FROM:<>"));
        }
        await using (var wire = await LoggedInAsync("ratey"))
            Assert.Equal("450 4.7.1 Error: too much mail from user ratey this hour, try again later", await wire.CommandAsync("MAIL FROM:<>"));
        await Sluice.WaitForLogAsync($"ratey is over Smtp.LoginRatePerHour ({RatePerHour} messages an hour)");
        await using (var wire = await LoggedInAsync("other"))
            Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<>"));
    }

    [Fact]
    public async Task With_HideAuthenticatedUser_the_login_stays_out_of_the_received_header()
    {
        await using (var wire = await LoggedInAsync("relay-app"))
        {
            Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<app@client.test>"));
            Assert.Equal("250 2.1.5 Ok", await wire.CommandAsync("RCPT TO:<hidden@remote.test>"));
            Assert.StartsWith("354 ", await wire.CommandAsync("DATA"), StringComparison.Ordinal);
            Assert.StartsWith("250 2.0.0 Ok: queued as ", await wire.CommandAsync("Subject: hidden login\r\n\r\nbody\r\n."), StringComparison.Ordinal);
        }
        Testing.SmtpSink.Received? m = null;
        for (var count = 1; m is null; count++)
        {
            await Sluice.Sink.WaitForCountAsync(count, TimeSpan.FromSeconds(30));
            m = Sluice.Sink.Messages.FirstOrDefault(r => r.Recipients.Contains("hidden@remote.test"));
        }
        Assert.StartsWith("Received: from wire.client.test ([127.0.0.1])\r\n\t(using TLSv1.", m.Data, StringComparison.Ordinal);
        Assert.Contains(")\r\n\tby mx.sluice.test (Sluice) with ESMTPSA id ", m.Data, StringComparison.Ordinal);
        Assert.DoesNotContain("authenticated as", m.Data, StringComparison.Ordinal);
        Assert.DoesNotContain("relay-app", m.Data, StringComparison.Ordinal);
    }
}
