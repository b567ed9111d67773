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

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // file modes are POSIX
    public async Task Maildirs_are_private_whatever_the_umask_and_Mode_widens_directories_and_files()
    {
        using var dir = new TempDirectory();
        var options = new SluiceOptions();
        options.Mailboxes.Users["alice@local.test"] = new MailboxUserOptions { Quota = new ByteSize(10_000_000) };
        options.Mailboxes.Users["bob@local.test"] = new MailboxUserOptions { Quota = new ByteSize(10_000_000) };
        var request = (string rcpt) => new DeliveryRequest("m1", "carol@remote.test", [rcpt], "local.test", "Subject: x\r\n\r\nbody\r\n"u8.ToArray());
        const UnixFileMode Rw = UnixFileMode.UserRead | UnixFileMode.UserWrite, Rwx = Rw | UnixFileMode.UserExecute;

        // The test process has its own umask (022 here): the agent's defaults do not depend on the server's 077.
        await using (var agent = new MaildirAgent(dir.File("private"), "mx.test", new MailboxMap(options), TimeProvider.System))
            Assert.Equal(DeliveryStatus.Delivered, Assert.Single(await agent.DeliverAsync(request("alice@local.test"), CancellationToken.None)).Status);
        options.Mailboxes.Mode = "0750";
        options.Mailboxes.CreateExtensionFolders = true;
        await using (var agent = new MaildirAgent(dir.File("shared"), "mx.test", new MailboxMap(options), TimeProvider.System, MaildirPermissions.From(options.Mailboxes)))
            Assert.Equal(DeliveryStatus.Delivered, Assert.Single(await agent.DeliverAsync(request("bob+lists@local.test"), CancellationToken.None)).Status);

        void AssertModes(string root, UnixFileMode directories, UnixFileMode files, int count)
        {
            Assert.Equal(directories, File.GetUnixFileMode(root));
            Assert.All(Directory.GetDirectories(root, "*", SearchOption.AllDirectories), d => Assert.Equal(directories, File.GetUnixFileMode(d)));
            var made = Directory.GetFiles(root, "*", SearchOption.AllDirectories);
            Assert.Equal(count, made.Length); // the message, maildirsize, and a folder's maildirfolder
            Assert.All(made, f => Assert.Equal(files, File.GetUnixFileMode(f)));
        }
        AssertModes(dir.File("private"), Rwx, Rw, 2);
        AssertModes(dir.File("shared"), Rwx | UnixFileMode.GroupRead | UnixFileMode.GroupExecute, Rw | UnixFileMode.GroupRead, 3);
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
