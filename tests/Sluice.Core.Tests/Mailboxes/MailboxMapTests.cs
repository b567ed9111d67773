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
        // '/' is atext and a leading dot can be quoted: both are encoded, never a path or a hidden directory.
        Assert.Equal(new Mailbox("a%2Fb", null, null), map.Find("a/b@localhost").Mailbox);
        Assert.Equal(new Mailbox("%2Ehidden", null, null), map.Find("\".hidden\"@localhost").Mailbox);
        Assert.Equal(new Mailbox("a%20b", null, null), map.Find("\"A B\"@localhost").Mailbox);
        // Nothing to name, or a name past NAME_MAX once encoded: no Maildir, so no mailbox.
        Assert.True(map.Find("\"\"@localhost").Unknown);
        Assert.True(map.Find($"\"{new string(' ', 90)}\"@localhost").Unknown);
        Assert.NotNull(map.Find($"\"{new string(' ', 85)}\"@localhost").Mailbox);
    }

    [Theory]
    [InlineData("\"alice\"@local.test")]
    [InlineData("\"ALICE\"@local.test")]
    [InlineData("\"al\\ice\"@local.test")]
    public void A_quoted_local_part_is_the_same_mailbox_as_the_unquoted_one(string address)
    {
        var map = Map();
        Assert.Equal(map.Find("alice@local.test").Mailbox, map.Find(address).Mailbox);
        Assert.Equal(new Mailbox("alice", "lists", 1000), map.Find(address.Insert(address.LastIndexOf('"'), "+lists")).Mailbox);
    }

    [Fact]
    public void A_quoted_user_in_the_configuration_is_found_by_its_content_and_quoted_alias_targets_are_kept_canonical()
    {
        var map = Map(m =>
        {
            m.Users["\"Carol Q\"@local.test"] = new MailboxUserOptions();
            m.Users["\"dan\"@local.test"] = new MailboxUserOptions();
            m.Aliases["fwd@local.test"] = ["\"Dave\"@remote.example", "\"e f\"@remote.example", "\"carol q\"@local.test"];
        });
        Assert.Equal(new Mailbox("carol%20q", null, null), map.Find("\"carol q\"@LOCAL.test").Mailbox);
        Assert.Equal(new Mailbox("dan", null, null), map.Find("dan@local.test").Mailbox);
        Assert.True(map.Find("\"carol  q\"@local.test").Unknown);
        Assert.Equal(["Dave@remote.example", "\"e f\"@remote.example", "\"carol q\"@local.test"], map.Expand("fwd@local.test")!.Recipients);
    }

    [Theory]
    [InlineData("\"../../etc\"")]
    [InlineData("\"a/../b\"")]
    [InlineData("\"..\"")]
    [InlineData("\".\"")]
    [InlineData("\"..\\\"\"")]
    [InlineData("\"a\\\"b\"")]
    [InlineData("\"a\\\\b\"")]
    [InlineData("\"/etc/passwd\"")]
    [InlineData("\"a\\ b~{}|\"")]
    [InlineData("\"%2E%2E\"")]
    [InlineData("../x")]
    public void No_local_part_makes_a_maildir_outside_the_root_or_a_name_with_quotes_backslashes_or_dots_first(string local)
    {
        var map = Map(m => m.Domains["virtual.test"] = "virtual");
        var root = Path.GetFullPath("/srv/maildirs");
        foreach (var (domain, parent) in new[] { ("localhost", root), ("virtual.test", Path.Combine(root, "virtual")) })
        {
            var box = map.Find($"{local}@{domain}").Mailbox;
            Assert.NotNull(box);
            var name = Path.GetFileName(box.Directory);
            Assert.DoesNotContain('"', name);
            Assert.DoesNotContain('\\', name);
            Assert.DoesNotContain('/', name);
            Assert.DoesNotContain("..", name, StringComparison.Ordinal);
            Assert.False(name.StartsWith('.'), name);
            // One level below its parent, whatever the local part says.
            Assert.Equal(parent, Path.GetDirectoryName(Path.GetFullPath(Path.Combine(root, box.Directory))));
        }
    }

    [Fact]
    public void The_maildir_name_mapping_is_injective()
    {
        string[] contents = ["a b", "a%20b", "a%2520b", "a_b", ".a", "%2ea", "%2Ea", "a..b", "a.%2Eb", "a/b", "a%2Fb", "a\"b", "a\\b", "jörg", "j%C3%B6rg", "a.", "a"];
        var names = contents.Select(c => MailboxMap.MaildirName(c)).ToList();
        Assert.All(names, Assert.NotNull);
        Assert.Equal(contents.Length, names.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal("jörg", MailboxMap.MaildirName("jörg"));
        Assert.Equal("a%2F.%2E%2Fb", MailboxMap.MaildirName("a/../b"));
    }

    [Fact]
    public void An_extension_that_is_no_safe_folder_name_reaches_the_inbox()
    {
        var map = Map();
        Assert.Equal(new Mailbox("alice", null, 1000), map.Find("\"alice+a b\"@local.test").Mailbox);
        Assert.Equal(new Mailbox("alice", null, 1000), map.Find("\"alice+..\\\"\"@local.test").Mailbox);
        Assert.Equal(new Mailbox("alice", null, 1000), map.Find("alice+a/b@local.test").Mailbox);
        Assert.Equal(new Mailbox("alice", "a.b", 1000), map.Find("\"alice+a.b\"@local.test").Mailbox);
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
