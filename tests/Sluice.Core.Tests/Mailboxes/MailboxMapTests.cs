// Every shape of lookup the mailbox map answers: users, open domains, role accounts, extensions,
// aliases (one to several, nested, remote, catch-all) and the loops it refuses.
using Sluice.Core.Configuration;
using Sluice.Core.Mailboxes;

namespace Sluice.Core.Tests.Mailboxes;

public sealed class MailboxMapTests
{
    private static MailboxMap Map(Action<MailboxesOptions>? adjust = null)
    {
        var o = new SluiceOptions();
        o.Smtp.LocalDomains = ["localhost", "open.test"];
        o.Mailboxes.Users["alice@local.test"] = new MailboxUserOptions { Quota = new ByteSize(1000) };
        o.Mailboxes.Users["bob@local.test"] = new MailboxUserOptions();
        o.Mailboxes.Aliases["team@local.test"] = ["Alice@local.test", "bob@local.test", "carol@remote.example"];
        adjust?.Invoke(o.Mailboxes);
        return new MailboxMap(o);
    }

    [Fact]
    public void A_listed_user_is_a_mailbox_with_its_quota_and_others_at_that_domain_are_unknown()
    {
        var map = Map();
        Assert.Equal(new Mailbox("alice", null, 1000), map.Find("ALICE@Local.Test").Mailbox);
        Assert.True(map.Find("mallory@local.test").Unknown);
        Assert.Null(map.Expand("mallory@local.test"));
    }

    [Fact]
    public void A_local_domain_without_users_takes_every_local_part_that_can_name_a_maildir()
    {
        var map = Map();
        Assert.Equal(new Mailbox("anyone", null, null), map.Find("Anyone@localhost").Mailbox);
        Assert.True(map.Find(".hidden@localhost").Unknown);
        Assert.True(map.Find("a/b@localhost").Unknown);
    }

    [Theory]
    [InlineData("postmaster")]
    [InlineData("abuse")]
    [InlineData("MAILER-DAEMON")]
    public void Role_accounts_exist_at_a_domain_with_users_listed(string role)
    {
        Assert.Equal(new Mailbox(role.ToLowerInvariant(), null, null), Map().Find($"{role}@local.test").Mailbox);
    }

    [Fact]
    public void Postmaster_stays_when_the_other_role_accounts_are_configured_away()
    {
        var map = Map(m => m.RoleAccounts = []);
        Assert.NotNull(map.Find("postmaster@local.test").Mailbox);
        Assert.True(map.Find("abuse@local.test").Unknown);
    }

    [Fact]
    public void An_extension_reaches_the_user_and_names_a_folder()
    {
        var map = Map();
        Assert.Equal(new Mailbox("alice", "lists", 1000), map.Find("alice+lists@local.test").Mailbox);
        Assert.Equal(new Mailbox("anyone", "news", null), map.Find("anyone+news@localhost").Mailbox);
        // A tag that cannot be a Maildir++ folder still reaches the inbox.
        Assert.Equal(new Mailbox("alice", null, 1000), map.Find("alice+..@local.test").Mailbox);
        Assert.True(map.Find("alice-lists@local.test").Unknown);
    }

    [Fact]
    public void Qmail_style_dash_extensions_when_configured_leave_role_accounts_whole()
    {
        var map = Map(m => m.ExtensionSeparators = "+-");
        Assert.Equal(new Mailbox("alice", "lists", 1000), map.Find("alice-lists@local.test").Mailbox);
        Assert.Equal(new Mailbox("mailer-daemon", null, null), map.Find("MAILER-DAEMON@local.test").Mailbox);
    }

    [Fact]
    public void An_alias_expands_to_local_and_remote_recipients_once_each()
    {
        var expansion = Map(m => m.Aliases["all@local.test"] = ["team@local.test", "bob@local.test"]).Expand("all@local.test");
        Assert.NotNull(expansion);
        Assert.Equal(["Alice@local.test", "bob@local.test", "carol@remote.example"], expansion.Recipients);
        Assert.Equal(["all@local.test", "team@local.test"], expansion.Aliases);
    }

    [Fact]
    public void A_user_or_remote_address_expands_to_itself()
    {
        var map = Map();
        var user = map.Expand("alice@local.test");
        Assert.NotNull(user);
        Assert.Equal(["alice@local.test"], user.Recipients);
        Assert.Empty(user.Aliases);
        Assert.Equal(["x@remote.example"], map.Expand("x@remote.example")!.Recipients);
    }

    [Fact]
    public void A_catch_all_takes_unknown_local_parts_but_not_users()
    {
        var map = Map(m => m.Aliases["@local.test"] = ["bob@local.test"]);
        Assert.Equal(["bob@local.test"], map.Expand("whoever@local.test")!.Recipients);
        Assert.Equal(["whoever@local.test"], map.Expand("whoever@local.test")!.Aliases);
        Assert.Equal(["alice@local.test"], map.Expand("alice@local.test")!.Recipients);
    }

    [Fact]
    public void Aliases_that_loop_or_lead_to_nobody_expand_to_nothing()
    {
        var map = Map(m =>
        {
            m.Aliases["a@local.test"] = ["b@local.test"];
            m.Aliases["b@local.test"] = ["a@local.test", "bob@local.test"];
            m.Aliases["gone@local.test"] = ["nobody@local.test"];
        });
        Assert.Null(map.Expand("a@local.test"));
        Assert.Null(map.Expand("gone@local.test"));
    }

    [Fact]
    public void A_virtual_domain_keeps_its_maildirs_in_its_own_directory()
    {
        var map = Map(m => m.Domains["virtual.test"] = "virtual");
        Assert.True(map.IsLocal("VIRTUAL.test"));
        Assert.Equal(new Mailbox("virtual/dave", null, null), map.Find("dave@virtual.test").Mailbox);
        Assert.Equal(["local.test", "virtual.test"], map.MailboxDomains);
    }
}
