// Quoted local parts (RFC 5321 §4.1.2) from swaks, a client nobody here wrote, against the real binary:
// an unknown one is 550 5.1.1 (never 501), one at a domain without users lands in a Maildir whose name
// is percent-encoded and one level below Mailboxes.Root whatever it says, "alice" is alice, and relayed
// mail keeps the local part's content with the quoting it needs on the wire.
namespace Sluice.EndToEnd;

public sealed class QuotedLocalPartTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static Task<Instance> StartAsync() => Instance.StartAsync(c => c["Mailboxes"] = new
    {
        Users = new Dictionary<string, object> { ["alice@local.test"] = new { } },
    });

    private static Task<(int Exit, string Output)> SwaksAsync(Instance sluice, string from, string to) =>
        ClientInteropTests.RunAsync("swaks", ["--server", $"127.0.0.1:{sluice.Process.SmtpPort}", "--from", from, "--to", to, "--body", "quoted"]);

    [Fact]
    public async Task An_unknown_quoted_mailbox_at_a_domain_with_users_is_550_5_1_1()
    {
        await using var sluice = await StartAsync();
        var (exit, output) = await SwaksAsync(sluice, "\"x y\"@client.test", "\"a b\"@local.test");
        Assert.Contains(" -> RCPT TO:<\"a b\"@local.test>\n", output, StringComparison.Ordinal);
        Assert.Contains("<** 550 5.1.1 <\"a b\"@local.test>: Recipient address rejected: no such user here\n", output, StringComparison.Ordinal);
        Assert.Equal(24, exit); // swaks: the recipient was refused
    }

    [Fact]
    public async Task Quoted_local_parts_are_delivered_to_safe_maildirs_that_never_leave_the_root_and_alice_quoted_is_alice()
    {
        await using var sluice = await StartAsync();
        // The first delivery makes the root; every directory outside it must stay as it was.
        var (exit, output) = await SwaksAsync(sluice, "\"x y\"@client.test", "\"alice\"@local.test");
        Assert.True(exit == 0, output);
        var alice = await sluice.WaitForMaildirAsync("alice");
        Assert.StartsWith("Return-Path: <\"x y\"@client.test>\nDelivered-To: alice@local.test\n", alice, StringComparison.Ordinal);
        var outside = DirectoriesOutside(sluice);

        (string Rcpt, string Maildir)[] cases =
        [
            ("\"a b\"@localhost", "a%20b"),
            ("\"../../etc\"@localhost", "%2E.%2F.%2E%2Fetc"),
            ("\"a/../../b\"@localhost", "a%2F.%2E%2F.%2E%2Fb"),
            ("\"..\"@localhost", "%2E."),
            ("\"a\\\"b\\\\c\"@localhost", "a%22b%5Cc"),
        ];
        foreach (var (rcpt, maildir) in cases)
        {
            (exit, output) = await SwaksAsync(sluice, "sender@client.test", rcpt);
            Assert.True(exit == 0, output);
            Assert.Contains(" -> RCPT TO:<" + rcpt + ">\n", output, StringComparison.Ordinal);
            var text = await sluice.WaitForMaildirAsync(maildir);
            Assert.StartsWith($"Return-Path: <sender@client.test>\nDelivered-To: {rcpt}\n", text, StringComparison.Ordinal);
        }
        Assert.Equal(
            ["%2E.", "%2E.%2F.%2E%2Fetc", "a%20b", "a%22b%5Cc", "a%2F.%2E%2F.%2E%2Fb", "alice"],
            Directory.GetDirectories(sluice.Maildirs).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(outside, DirectoriesOutside(sluice));
    }

    [Fact]
    public async Task Relayed_mail_keeps_the_local_part_and_is_quoted_on_the_wire_only_where_needed()
    {
        await using var sluice = await StartAsync();
        var (exit, output) = await SwaksAsync(sluice, "\"x y\"@client.test", "\"Carol Q\"@remote.test,\"Dave\"@remote.test,\"e\\\\\\\"f\"@remote.test");
        Assert.True(exit == 0, output);
        await sluice.Sink.WaitForCountAsync(1, Wait);
        var m = Assert.Single(sluice.Sink.Messages);
        // The sink records what was between the brackets, as sent: case kept, needless quotes gone (RFC 5321 §4.1.2).
        Assert.Equal("\"x y\"@client.test", m.Sender);
        Assert.Equal(["\"Carol Q\"@remote.test", "Dave@remote.test", "\"e\\\\\\\"f\"@remote.test"], m.Recipients);
    }

    /// <summary>Every directory in the instance's tree but those below Mailboxes.Root.</summary>
    private static List<string> DirectoriesOutside(Instance sluice) =>
        [.. Directory.GetDirectories(sluice.Dir.Path, "*", SearchOption.AllDirectories)
            .Where(d => !d.StartsWith(sluice.Maildirs + "/", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];
}
