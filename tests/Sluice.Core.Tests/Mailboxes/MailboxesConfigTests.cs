// The Mailboxes section at start: bad users, aliases and virtual domains stop start-up with key and
// reason, and a domain with mailboxes that no channel lists is delivered by the maildir channel.
using Sluice.Core.Configuration;
using Sluice.Testing;

namespace Sluice.Core.Tests.Mailboxes;

public sealed class MailboxesConfigTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    private SluiceOptions Load(string mailboxes)
    {
        var path = _dir.File("sluice.json");
        File.WriteAllText(path, $$"""{ "Mailboxes": {{mailboxes}} }""");
        return ConfigLoader.Load(path, new Dictionary<string, string?>());
    }

    [Theory]
    [InlineData("""{ "Users": { "alice": {} } }""", "key 'Mailboxes:Users:alice': must be user@domain")]
    [InlineData("""{ "Users": { ".alice@local.test": {} } }""", "key 'Mailboxes:Users:.alice@local.test': must be user@domain")]
    [InlineData("""{ "Users": { "a b@local.test": {} } }""", "key 'Mailboxes:Users:a b@local.test': must be user@domain (the user a dot-string or a quoted string")]
    [InlineData("""{ "Users": { "\"\"@local.test": {} } }""", "key 'Mailboxes:Users:\"\"@local.test': must be user@domain")]
    [InlineData("""{ "Aliases": { "team@local.test": ["a b@remote.test"] } }""", "key 'Mailboxes:Aliases:team@local.test:0': \"a b@remote.test\" is not an address")]
    [InlineData("""{ "Aliases": { "team@local.test": [] } }""", "key 'Mailboxes:Aliases:team@local.test': needs at least one target address")]
    [InlineData("""{ "Aliases": { "team@local.test": ["bob"] } }""", "key 'Mailboxes:Aliases:team@local.test:0': \"bob\" is not an address")]
    [InlineData("""{ "Users": { "alice@local.test": {} }, "Aliases": { "team@local.test": ["nobody@local.test"] } }""",
        "key 'Mailboxes:Aliases:team@local.test': leads to a local address that is no user or alias, or loops back to itself")]
    [InlineData("""{ "Aliases": { "a@local.test": ["b@local.test"], "b@local.test": ["a@local.test"] } }""",
        "key 'Mailboxes:Aliases:a@local.test': leads to a local address that is no user or alias, or loops back to itself")]
    [InlineData("""{ "Domains": { "virtual.test": "../etc" } }""", "key 'Mailboxes:Domains:virtual.test': must map a domain to one directory name")]
    [InlineData("""{ "ExtensionSeparators": "+." }""", "key 'Mailboxes:ExtensionSeparators': \"+.\" may hold only the characters")]
    [InlineData("""{ "Users": { "alice@local.test": { "PasswordHash": "secret" } } }""", "key 'Mailboxes:Users:alice@local.test:PasswordHash': must be a bcrypt hash")]
    [InlineData("""{ "Srs": { "Domain": "srs.local.test", "Secret": "short" } }""", "key 'Mailboxes:Srs:Secret': must be at least 16 characters")]
    [InlineData("""{ "Srs": { "Domain": "not a domain", "Secret": "sixteen characters or more" } }""", "key 'Mailboxes:Srs:Domain': \"not a domain\" is not a domain")]
    [InlineData("""{ "Srs": { "Domain": "srs.local.test", "Secret": "sixteen characters or more", "MaxAgeDays": 1024 } }""", "key 'Mailboxes:Srs:MaxAgeDays': must be from 1 to 1023 days")]
    public void A_bad_mailbox_entry_is_named_with_its_key_and_reason(string mailboxes, string expected)
    {
        var e = Assert.Throws<ConfigurationException>(() => Load(mailboxes));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bcrypt_password_hash_and_an_SRS_section_are_taken_and_the_SRS_domain_is_delivered_by_the_maildir_channel()
    {
        var o = Load("""
            { "Users": { "alice@local.test": { "PasswordHash": "$2y$11$Nk0dg234SBXdXhBrPAfzw.GPPZV8ji/yd4j7HnU301BPcg35qjwQO" } },
              "Srs": { "Domain": "srs.local.test", "Secret": "sixteen characters or more" } }
            """);
        Assert.Equal(21, o.Mailboxes.Srs!.MaxAgeDays);
        Assert.Contains("srs.local.test", o.Channels.Single(c => c.Name == "local").Domains);
    }

    [Fact]
    public void A_user_or_alias_may_be_written_with_a_quoted_local_part()
    {
        var o = Load("""{ "Users": { "\"a b\"@local.test": {} }, "Aliases": { "\"team\"@local.test": ["\"a b\"@local.test", "\"x y\"@remote.test"] } }""");
        var map = new Sluice.Core.Mailboxes.MailboxMap(o);
        Assert.Equal(["\"a b\"@local.test", "\"x y\"@remote.test"], map.Expand("team@local.test")!.Recipients);
    }

    [Fact]
    public void A_domain_with_users_routed_to_an_smtp_channel_is_refused()
    {
        var path = _dir.File("sluice.json");
        File.WriteAllText(path, """
            { "Channels": [ { "Name": "local", "Transport": "maildir", "Domains": ["localhost"] },
                            { "Name": "remote", "Transport": "smtp" },
                            { "Name": "bulk", "Transport": "smtp", "Domains": ["local.test"] } ],
              "Mailboxes": { "Users": { "alice@local.test": {} } } }
            """);
        var e = Assert.Throws<ConfigurationException>(() => ConfigLoader.Load(path, new Dictionary<string, string?>()));
        Assert.Contains("key 'Mailboxes': \"local.test\" has mailboxes, but channel \"bulk\" is not a maildir channel", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Domains_with_users_aliases_or_maildirs_join_the_maildir_channel_when_no_channel_lists_them()
    {
        var o = Load("""{ "Users": { "alice@local.test": { "Quota": "1MB" } }, "Aliases": { "@other.test": ["alice@local.test"] }, "Domains": { "virtual.test": "v" } }""");
        Assert.Equal(["localhost", "local.test", "other.test", "virtual.test"], o.Channels[0].Domains);
    }

    public void Dispose() => _dir.Dispose();
}
