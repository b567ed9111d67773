// The Maildir agent against a real directory: maildirsize must agree with the messages on disk even when many
// deliveries to a fresh mailbox race its first rebuild, or Dovecot and Sluice disagree on quota.
using System.Globalization;
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Core.Mailboxes;
using Sluice.Delivery;
using Sluice.Delivery.Maildir;
using Sluice.Testing;

namespace Sluice.Delivery.Tests;

public sealed class MaildirAgentTests
{
    [Fact]
    public async Task Concurrent_deliveries_to_a_new_mailbox_with_a_quota_keep_maildirsize_equal_to_the_messages()
    {
        using var dir = new TempDirectory();
        var options = new SluiceOptions();
        options.Mailboxes.Users["alice@local.test"] = new MailboxUserOptions { Quota = new ByteSize(10_000_000) };
        await using var agent = new MaildirAgent(dir.Path, "mx.test", new MailboxMap(options), TimeProvider.System);

        var deliveries = Enumerable.Range(0, 200).Select(i => Task.Run(() => agent.DeliverAsync(new DeliveryRequest(
            $"m{i}", "bob@remote.test", ["alice@local.test"], "local.test",
            Encoding.ASCII.GetBytes($"Subject: {i}\r\n\r\n{new string('x', i * 7)}\r\n")), CancellationToken.None)));
        var results = await Task.WhenAll(deliveries);

        Assert.All(results, r => Assert.True(r[0].Status == DeliveryStatus.Delivered, r[0].Text));
        var maildir = Path.Combine(dir.Path, "alice");
        var onDisk = Directory.GetFiles(Path.Combine(maildir, "new")).Sum(f => new FileInfo(f).Length);
        var recorded = File.ReadAllLines(Path.Combine(maildir, MaildirSize.FileName)).Skip(1)
            .Sum(l => long.Parse(l.Split(' ')[0], CultureInfo.InvariantCulture));
        Assert.Equal(200, Directory.GetFiles(Path.Combine(maildir, "new")).Length);
        Assert.Equal(onDisk, recorded);
    }

    [Theory]
    [InlineData("\"../../etc\"@localhost", "%2E.%2F.%2E%2Fetc")]
    [InlineData("\"a/../b\"@localhost", "a%2F.%2E%2Fb")]
    [InlineData("\"..\"@localhost", "%2E.")]
    [InlineData("\"..\\\"\"@localhost", "%2E.%22")]
    [InlineData("\"a\\\\b c\"@localhost", "a%5Cb%20c")]
    [InlineData("a/b@localhost", "a%2Fb")]
    [InlineData("\"../x\"@virtual.test", "virtual/%2E.%2Fx")]
    public async Task A_hostile_local_part_is_delivered_to_its_encoded_maildir_inside_the_root_and_nowhere_else(string recipient, string maildir)
    {
        using var dir = new TempDirectory();
        var root = dir.File("a/b/maildirs");
        Directory.CreateDirectory(root);
        var options = new SluiceOptions();
        options.Mailboxes.Domains["virtual.test"] = "virtual";
        await using var agent = new MaildirAgent(root, "mx.test", new MailboxMap(options), TimeProvider.System);

        var result = Assert.Single(await agent.DeliverAsync(new DeliveryRequest("m1", "bob@remote.test", [recipient], "localhost", "Subject: x\r\n\r\nbody\r\n"u8.ToArray()), CancellationToken.None));

        Assert.True(result.Status == DeliveryStatus.Delivered, result.Text);
        Assert.StartsWith($"250 2.0.0 delivered to maildir {maildir}/new/", result.Text, StringComparison.Ordinal);
        // The message is the only file made, in the encoded Maildir one level below the root; nothing beside the root.
        var file = Assert.Single(Directory.GetFiles(dir.Path, "*", SearchOption.AllDirectories));
        Assert.Equal(Path.Combine(root, maildir, "new"), Path.GetDirectoryName(file));
        Assert.Equal(["maildirs"], Directory.GetDirectories(dir.File("a/b")).Select(Path.GetFileName));
        Assert.StartsWith($"Return-Path: <bob@remote.test>\nDelivered-To: {recipient}\n", await File.ReadAllTextAsync(file), StringComparison.Ordinal);
    }
}
