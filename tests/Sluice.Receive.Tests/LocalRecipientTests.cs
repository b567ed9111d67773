// RCPT to local domains against the mailbox map, and what is spooled for aliases: unknown users are
// refused at once (no backscatter), full mailboxes deferred, aliases expanded into messages marked
// Delivered-To, and a message that already carries our Delivered-To refused as a loop.
using System.Net;
using Sluice.Core.Configuration;
using Sluice.Core.Mailboxes;
using Sluice.Testing;

namespace Sluice.Receive.Tests;

public sealed class LocalRecipientTests : IDisposable
{
    private static readonly IPAddress Outsider = IPAddress.Parse("192.0.2.1");
    private readonly TempDirectory _maildirs = new();

    private void Configure(SluiceOptions o)
    {
        o.Mailboxes.Root = _maildirs.Path;
        o.Mailboxes.Users["alice@local.test"] = new MailboxUserOptions { Quota = new ByteSize(1000) };
        o.Mailboxes.Users["bob@local.test"] = new MailboxUserOptions();
        o.Mailboxes.Aliases["team@local.test"] = ["alice@local.test", "carol@remote.example"];
        o.Mailboxes.Aliases["all@local.test"] = ["team@local.test", "bob@local.test"];
    }

    private async Task<SessionHarness> StartAsync(Action<SluiceOptions>? more = null)
    {
        var h = await SessionHarness.StartEhloAsync(o => { Configure(o); more?.Invoke(o); }, Outsider);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<sender@client.test>"));
        return h;
    }

    private static async Task<string> SendDataAsync(SessionHarness h, string headers = "")
    {
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        return await h.CommandLineAsync($"{headers}Subject: hi\r\n\r\nbody\r\n.");
    }

    [Fact]
    public async Task An_unknown_user_at_a_domain_with_users_is_refused_at_RCPT_from_anyone()
    {
        await using var h = await StartAsync();
        Assert.Equal("550 5.1.1 <mallory@local.test>: Recipient address rejected: no such user here", await h.CommandLineAsync("RCPT TO:<mallory@local.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<alice@local.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<alice+lists@local.test>"));
        Assert.Equal("550 5.1.1 <alice-lists@local.test>: Recipient address rejected: no such user here", await h.CommandLineAsync("RCPT TO:<alice-lists@local.test>"));
    }

    [Theory]
    [InlineData("\"a b\"@local.test")]
    [InlineData("\"alice \"@local.test")]
    [InlineData("\"a\\\"b\"@local.test")]
    [InlineData("\"../alice\"@local.test")]
    public async Task A_quoted_local_part_that_is_no_user_is_an_unknown_mailbox_not_bad_syntax(string rcpt)
    {
        await using var h = await StartAsync();
        Assert.Equal($"550 5.1.1 <{rcpt}>: Recipient address rejected: no such user here", await h.CommandLineAsync($"RCPT TO:<{rcpt}>"));
    }

    [Fact]
    public async Task A_quoted_user_is_the_user_and_is_queued_and_marked_in_canonical_form()
    {
        await using var h = await StartAsync();
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<\"alice\"@local.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<\"te\\am\"@local.test>"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await SendDataAsync(h), StringComparison.Ordinal);
        // alice once, although the alias team leads to her too; the alias's share is marked with its canonical name.
        Assert.Equal(["alice@local.test"], Assert.Single(h.Stored, m => m.Recipients.Contains("alice@local.test")).Recipients);
        var forwarded = Assert.Single(h.Stored, m => m.Recipients.Contains("carol@remote.example"));
        Assert.StartsWith("Delivered-To: team@local.test\r\n", await h.ReadBodyTextAsync(forwarded), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_loop_is_seen_through_a_quoted_Delivered_To()
    {
        await using var h = await StartAsync();
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<alice@local.test>"));
        Assert.StartsWith("554 5.4.6 <", await SendDataAsync(h, "Delivered-To: \"Alice\"@local.test\r\n"), StringComparison.Ordinal);
        Assert.Empty(h.Stored);
    }

    [Theory]
    [InlineData("\"a b\"@localhost", "\"a b\"@localhost")]
    [InlineData("\"../../etc\"@localhost", "\"../../etc\"@localhost")]
    [InlineData("\"a/../b\"@localhost", "\"a/../b\"@localhost")]
    [InlineData("\"a/b\"@localhost", "a/b@localhost")]
    [InlineData("\"..\"@localhost", "\"..\"@localhost")]
    public async Task Any_quoted_local_part_that_can_name_a_maildir_is_taken_at_a_domain_without_users(string rcpt, string stored)
    {
        await using var h = await StartAsync();
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync($"RCPT TO:<{rcpt}>"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await SendDataAsync(h), StringComparison.Ordinal);
        Assert.Equal([stored], Assert.Single(h.Stored).Recipients);
    }

    [Fact]
    public async Task A_local_part_that_cannot_name_a_maildir_is_refused_553_5_1_3_at_RCPT()
    {
        await using var h = await StartAsync();
        Assert.Equal("553 5.1.3 <\"\"@localhost>: Recipient address rejected: this local part cannot name a mailbox here", await h.CommandLineAsync("RCPT TO:<\"\"@localhost>"));
        // 90 spaces are 270 bytes as %20: past NAME_MAX.
        var spaces = $"\"{new string(' ', 90)}\"@localhost";
        Assert.Equal($"553 5.1.3 <{spaces}>: Recipient address rejected: this local part cannot name a mailbox here", await h.CommandLineAsync($"RCPT TO:<{spaces}>"));
        Assert.Equal("554 5.5.1 Error: no valid recipients", await h.CommandLineAsync("DATA"));
    }

    [Theory]
    [InlineData("postmaster@local.test")]
    [InlineData("Postmaster")]
    [InlineData("abuse@local.test")]
    [InlineData("MAILER-DAEMON@local.test")]
    [InlineData("anyone@localhost")]
    public async Task Role_accounts_and_any_user_of_a_domain_without_users_are_accepted(string rcpt)
    {
        await using var h = await StartAsync(o => o.Smtp.LocalDomains = ["localhost", "local.test"]);
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync($"RCPT TO:<{rcpt}>"));
    }

    [Fact]
    public async Task A_mailbox_over_quota_is_deferred_at_RCPT_and_so_is_a_declared_SIZE_that_would_pass_it()
    {
        Directory.CreateDirectory(_maildirs.File("alice"));
        await File.WriteAllTextAsync(_maildirs.File($"alice/{MaildirSize.FileName}"), "1000S\n900 3\n");
        await using var h = await SessionHarness.StartEhloAsync(Configure, Outsider);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<sender@client.test> SIZE=200"));
        Assert.Equal("452 4.2.2 <alice@local.test>: Mailbox full", await h.CommandLineAsync("RCPT TO:<alice@local.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<bob@local.test>"));
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync("RSET"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<sender@client.test> SIZE=50"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<alice@local.test>"));
        await File.WriteAllTextAsync(_maildirs.File($"alice/{MaildirSize.FileName}"), "1000S\n1000 4\n");
        Assert.Equal("452 4.2.2 <alice+tag@local.test>: Mailbox full", await h.CommandLineAsync("RCPT TO:<alice+tag@local.test>"));
    }

    [Fact]
    public async Task An_alias_is_spooled_expanded_apart_from_direct_recipients_marked_Delivered_To_with_the_alias_as_ORCPT()
    {
        await using var h = await StartAsync();
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<bob@local.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<all@local.test> NOTIFY=FAILURE"));
        var reply = await SendDataAsync(h);
        Assert.Equal(2, h.Stored.Count);
        // The parts are handed over together, so they may be stored in either order; the reply lists them as split.
        var direct = Assert.Single(h.Stored, m => m.Recipients.Contains("bob@local.test"));
        var forwarded = Assert.Single(h.Stored, m => m != direct);
        Assert.Equal($"250 2.0.0 Ok: queued as {direct.Id} {forwarded.Id}", reply);

        Assert.Equal(["bob@local.test"], direct.Recipients);
        Assert.StartsWith("Received: ", await h.ReadBodyTextAsync(direct), StringComparison.Ordinal);

        Assert.Equal("sender@client.test", forwarded.Sender);
        // bob had his copy already: one per recipient, however many ways it reaches him.
        Assert.Equal(["alice@local.test", "carol@remote.example"], forwarded.Recipients);
        Assert.All(Enumerable.Range(0, 2), i => Assert.Equal(new Core.Mail.RecipientDsn(Core.Mail.DsnNotify.Failure, "rfc822;all@local.test"), forwarded.Envelope.DsnOf(i)));
        var text = await h.ReadBodyTextAsync(forwarded);
        Assert.StartsWith("Delivered-To: all@local.test\r\nReceived: ", text, StringComparison.Ordinal);
        Assert.EndsWith("Subject: hi\r\n\r\nbody\r\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_catch_all_takes_an_unknown_local_part()
    {
        await using var h = await StartAsync(o => o.Mailboxes.Aliases["@local.test"] = ["bob@local.test"]);
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<whoever@local.test>"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await SendDataAsync(h), StringComparison.Ordinal);
        Assert.Equal(["bob@local.test"], Assert.Single(h.Stored).Recipients);
        Assert.StartsWith("Delivered-To: whoever@local.test\r\n", await h.ReadBodyTextAsync(h.Stored[0]), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("alice@local.test", "Delivered-To: alice@local.test")]
    [InlineData("team@local.test", "Delivered-To: team@local.test")]
    [InlineData("all@local.test", "delivered-to:   <Alice@Local.Test>")] // an alias's local target, in any case
    public async Task A_message_already_delivered_to_a_recipient_or_alias_here_is_refused_as_a_loop(string rcpt, string header)
    {
        await using var h = await StartAsync();
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync($"RCPT TO:<{rcpt}>"));
        var reply = await SendDataAsync(h, $"Delivered-To: someone@elsewhere.example\r\n{header}\r\n");
        Assert.StartsWith("554 5.4.6 <", reply, StringComparison.Ordinal);
        Assert.EndsWith(">: message is looping: it already has a Delivered-To line for this address", reply, StringComparison.Ordinal);
        Assert.Empty(h.Stored);
    }

    [Fact]
    public async Task A_Delivered_To_in_the_body_or_for_someone_else_is_no_loop()
    {
        await using var h = await StartAsync();
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<alice@local.test>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok", await h.CommandLineAsync("Delivered-To: bob@local.test\r\n\r\nDelivered-To: alice@local.test\r\n."), StringComparison.Ordinal);
        Assert.Single(h.Stored);
    }

    public void Dispose() => _maildirs.Dispose();
}
