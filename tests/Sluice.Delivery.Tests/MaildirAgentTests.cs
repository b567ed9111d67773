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
}
