// Local delivery through the real process: an alias forwarded to a remote address through the queue
// with the original sender, the same mail coming back refused as a loop, a virtual domain's Maildirs,
// extensions with and without their folder, a mailbox over quota deferred at delivery, then bounced
// when the message expires, and users added by a reload.
using System.Text;

namespace Sluice.EndToEnd;

public sealed class LocalDeliveryTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task An_alias_delivers_locally_and_forwards_remotely_and_the_forwarded_copy_coming_back_is_refused_as_a_loop()
    {
        await using var sluice = await Instance.StartAsync(c => c["Mailboxes"] = new
        {
            Users = new Dictionary<string, object> { ["alice@local.test"] = new { } },
            Aliases = new Dictionary<string, string[]> { ["team@local.test"] = ["alice@local.test", "carol@remote.test"] },
        });
        await TestMail.SendAsync(sluice.Process.SmtpPort, "team@local.test");

        var local = await sluice.WaitForMaildirAsync("alice");
        Assert.StartsWith("Return-Path: <sender@client.test>\nDelivered-To: alice@local.test\nDelivered-To: team@local.test\nReceived: ", local, StringComparison.Ordinal);
        await sluice.Sink.WaitForCountAsync(1, Wait);
        var forwarded = Assert.Single(sluice.Sink.Messages);
        Assert.Equal("sender@client.test", forwarded.Sender);
        Assert.Equal(["carol@remote.test"], forwarded.Recipients);
        Assert.StartsWith("Delivered-To: team@local.test\r\n", forwarded.Data, StringComparison.Ordinal);

        // carol's server forwards it straight back: qmail's loop guard refuses it before it goes round again.
        await using var wire = await SmtpWire.OpenAsync(sluice.Process.SmtpPort);
        Assert.StartsWith("250", await wire.CommandAsync("EHLO remote.test"));
        Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<sender@client.test>"));
        Assert.Equal("250 2.1.5 Ok", await wire.CommandAsync("RCPT TO:<team@local.test>"));
        Assert.StartsWith("354", await wire.CommandAsync("DATA"));
        Assert.Equal("554 5.4.6 <team@local.test>: message is looping: it already has a Delivered-To line for this address",
            await wire.CommandAsync(forwarded.Data + "."));
    }

    [Fact]
    public async Task A_virtual_domain_has_its_own_maildirs_and_refuses_unknown_users()
    {
        await using var sluice = await Instance.StartAsync(c => c["Mailboxes"] = new
        {
            Users = new Dictionary<string, object> { ["dave@virtual.test"] = new { } },
            Domains = new Dictionary<string, string> { ["virtual.test"] = "virtual" },
        });
        await TestMail.SendAsync(sluice.Process.SmtpPort, "dave@virtual.test");
        await sluice.WaitForLogAsync("delivered to maildir virtual/dave/new/");
        Assert.Single(Directory.GetFiles(Path.Combine(sluice.Maildirs, "virtual", "dave", "new")));

        await using var wire = await SmtpWire.OpenAsync(sluice.Process.SmtpPort);
        Assert.StartsWith("250", await wire.CommandAsync("EHLO client.test"));
        Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<sender@client.test>"));
        Assert.Equal("550 5.1.1 <erin@virtual.test>: Recipient address rejected: no such user here", await wire.CommandAsync("RCPT TO:<erin@virtual.test>"));
    }

    [Fact]
    public async Task An_extension_without_its_folder_reaches_the_inbox_and_a_dash_extension_works_when_configured()
    {
        await using var sluice = await Instance.StartAsync(c => c["Mailboxes"] = new
        {
            Users = new Dictionary<string, object> { ["alice@local.test"] = new { } },
            ExtensionSeparators = "+-",
        });
        await TestMail.SendAsync(sluice.Process.SmtpPort, "alice+nofolder@local.test");
        Assert.Contains("\nDelivered-To: alice+nofolder@local.test\n", await sluice.WaitForMaildirAsync("alice"), StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(sluice.Maildirs, "alice", ".nofolder")));

        Directory.CreateDirectory(Path.Combine(sluice.Maildirs, "alice", ".lists"));
        await TestMail.SendAsync(sluice.Process.SmtpPort, "alice-lists@local.test");
        await sluice.WaitForLogAsync("delivered to maildir alice/.lists/new/");
        Assert.Single(Directory.GetFiles(Path.Combine(sluice.Maildirs, "alice", ".lists", "new")));
    }

    [Fact]
    public async Task A_mailbox_over_quota_defers_at_delivery_bounces_at_expiry_and_is_then_refused_at_RCPT()
    {
        await using var sluice = await Instance.StartAsync(c =>
        {
            c["Mailboxes"] = new { Users = new Dictionary<string, object> { ["alice@local.test"] = new { Quota = "2KB" } } };
            c["Retry"] = new { Schedule = new[] { "1s" }, MaxQueueLifetime = "3s" };
        });
        // No SIZE and no maildirsize yet: RCPT cannot know, so the agent finds out.
        await using (var wire = await SmtpWire.OpenAsync(sluice.Process.SmtpPort))
        {
            Assert.StartsWith("250", await wire.CommandAsync("EHLO client.test"));
            Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<sender@client.test>"));
            Assert.Equal("250 2.1.5 Ok", await wire.CommandAsync("RCPT TO:<alice@local.test>"));
            Assert.StartsWith("354", await wire.CommandAsync("DATA"));
            var big = new StringBuilder("Subject: big\r\n\r\n");
            for (int i = 0; i < 60; i++) big.Append("a line of text to make the message larger than two kilobytes\r\n");
            Assert.StartsWith("250 2.0.0 Ok", await wire.CommandAsync(big + "."), StringComparison.Ordinal);
        }
        await sluice.WaitForLogAsync("deferral: 452 4.2.2 <alice@local.test>: mailbox full (0 of 2048 bytes used");
        await sluice.Sink.WaitForCountAsync(1, Wait);
        var bounce = Assert.Single(sluice.Sink.Messages);
        Assert.Equal("", bounce.Sender);
        Assert.Equal(["sender@client.test"], bounce.Recipients);
        Assert.Contains("Status: 4.4.7", bounce.Data, StringComparison.Ordinal); // RFC 3463: delivery time expired
        Assert.Contains("last error: 452 4.2.2 <alice@local.test>: mailbox full", bounce.Data, StringComparison.Ordinal);
        Assert.Empty(sluice.MaildirFiles("alice"));

        // The agent's maildirsize now tells RCPT what is used, so a declared SIZE that cannot fit is deferred at once.
        await using var again = await SmtpWire.OpenAsync(sluice.Process.SmtpPort);
        Assert.StartsWith("250", await again.CommandAsync("EHLO client.test"));
        Assert.Equal("250 2.1.0 Ok", await again.CommandAsync("MAIL FROM:<sender@client.test> SIZE=4000"));
        Assert.Equal("452 4.2.2 <alice@local.test>: Mailbox full", await again.CommandAsync("RCPT TO:<alice@local.test>"));
    }

    [Fact]
    public async Task A_user_added_by_SIGHUP_is_accepted_by_the_next_session_and_delivered()
    {
        await using var sluice = await Instance.StartAsync(c => c["Mailboxes"] = new { Users = new Dictionary<string, object> { ["alice@local.test"] = new { } } });
        async Task<string> RcptAsync(string rcpt)
        {
            await using var wire = await SmtpWire.OpenAsync(sluice.Process.SmtpPort);
            Assert.StartsWith("250", await wire.CommandAsync("EHLO client.test"));
            Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<sender@client.test>"));
            return await wire.CommandAsync($"RCPT TO:<{rcpt}>");
        }
        Assert.StartsWith("550 5.1.1", await RcptAsync("frank@local.test"), StringComparison.Ordinal);

        sluice.Config["Mailboxes"] = new
        {
            Users = new Dictionary<string, object> { ["alice@local.test"] = new { }, ["frank@local.test"] = new { } },
            Aliases = new Dictionary<string, string[]> { ["sales@local.test"] = ["frank@local.test"] },
        };
        await sluice.WriteConfigAsync();
        var (exit, _, stderr) = await sluice.RunVerbAsync("reload");
        Assert.True(exit == 0, stderr);
        await sluice.WaitForLogAsync("reload: configuration reloaded");
        Assert.DoesNotContain(sluice.Process.Log, l => l.Contains("Mailboxes.", StringComparison.Ordinal) && l.Contains("takes effect at restart", StringComparison.Ordinal));

        Assert.Equal("250 2.1.5 Ok", await RcptAsync("frank@local.test"));
        await TestMail.SendAsync(sluice.Process.SmtpPort, "sales@local.test");
        Assert.Contains("Delivered-To: frank@local.test\nDelivered-To: sales@local.test\n", await sluice.WaitForMaildirAsync("frank"), StringComparison.Ordinal);
    }
}
