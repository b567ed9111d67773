// Mail Sluice delivers is mail people can read: a private Dovecot serves Sluice's Maildirs over IMAP,
// and MailKit's ImapClient reads back the headers, the body bytes, the Maildir++ folder that "+tag"
// mail went to, and the quota, which Dovecot takes from the maildirsize Sluice keeps.
using System.Text;
using MailKit;
using MimeKit;

namespace Sluice.EndToEnd;

public sealed class DovecotTests
{
    [Fact]
    public async Task Dovecot_reads_delivered_mail_its_extension_folders_and_the_quota_Sluice_keeps()
    {
        await using var sluice = await Instance.StartAsync(c => c["Mailboxes"] = new
        {
            Users = new Dictionary<string, object> { ["alice@local.test"] = new { Quota = "64KB" } },
            CreateExtensionFolders = true,
        });
        await using var dovecot = await DovecotServer.StartAsync(sluice.Maildirs);

        // Dovecot makes a folder first; Sluice delivers alice+lists into it, and makes .news itself.
        using (var imap = await dovecot.ConnectAsync("alice"))
        {
            await imap.GetFolder(imap.PersonalNamespaces[0]).CreateAsync("lists", true);
            await imap.DisconnectAsync(true);
        }
        var body = string.Concat(Enumerable.Range(0, 40).Select(i => $"line {i:D2} of a body long enough to use some quota\r\n"));
        await SendAsync(sluice.Process.SmtpPort, "alice@local.test", "to the inbox", body);
        await SendAsync(sluice.Process.SmtpPort, "alice+lists@local.test", "to lists", body);
        await SendAsync(sluice.Process.SmtpPort, "alice+news@local.test", "to news", body);
        foreach (var where in new[] { "alice/new/", "alice/.lists/new/", "alice/.news/new/" })
            await sluice.WaitForLogAsync($"delivered to maildir {where}");

        using var client = await dovecot.ConnectAsync("alice");
        var inbox = client.Inbox;
        await inbox.OpenAsync(FolderAccess.ReadOnly);
        Assert.Equal(1, inbox.Count);
        var message = await inbox.GetMessageAsync(0);
        Assert.Equal("to the inbox", message.Subject);
        Assert.Equal("<sender@client.test>", message.Headers[HeaderId.ReturnPath]);
        Assert.Equal("alice@local.test", message.Headers["Delivered-To"]);
        Assert.StartsWith($"from ", message.Headers[HeaderId.Received], StringComparison.Ordinal);
        using (var text = await inbox.GetStreamAsync(0, "TEXT"))
        using (var reader = new StreamReader(text, Encoding.ASCII))
            Assert.Equal(body, await reader.ReadToEndAsync());

        foreach (var (name, subject) in new[] { ("lists", "to lists"), ("news", "to news") })
        {
            var folder = await client.GetFolderAsync(name);
            await folder.OpenAsync(FolderAccess.ReadOnly);
            Assert.Equal(subject, Assert.Single(await folder.FetchAsync(0, -1, MessageSummaryItems.Envelope)).Envelope?.Subject);
            Assert.Equal("alice+" + name + "@local.test", (await folder.GetMessageAsync(0)).Headers["Delivered-To"]);
        }

        // RFC 2087 QUOTA: storage in units of 1024 octets (Dovecot rounds up); no limit of Dovecot's own here, only maildirsize's.
        var quota = await inbox.GetQuotaAsync();
        var used = File.ReadAllLines(Path.Combine(sluice.Maildirs, "alice", "maildirsize")).Skip(1).Sum(l => long.Parse(l.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture));
        var files = Directory.GetFiles(Path.Combine(sluice.Maildirs, "alice"), "*,S=*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        Assert.Equal(files, used);
        Assert.Equal(64u, quota.StorageLimit);
        Assert.Equal((uint)((used + 1023) / 1024), quota.CurrentStorageSize);
        Assert.True(quota.CurrentStorageSize >= 3, $"three messages of {body.Length} bytes each should use at least 3 KiB, not {quota.CurrentStorageSize}");
        await client.DisconnectAsync(true);
    }

    private static async Task SendAsync(int port, string rcpt, string subject, string body)
    {
        using var smtp = new MailKit.Net.Smtp.SmtpClient { Timeout = 30_000 };
        await smtp.ConnectAsync("127.0.0.1", port, MailKit.Security.SecureSocketOptions.None);
        var message = new MimeMessage { Subject = subject, Body = new TextPart("plain") { Text = body } };
        message.From.Add(MailboxAddress.Parse("sender@client.test"));
        message.To.Add(MailboxAddress.Parse(rcpt));
        await smtp.SendAsync(message);
        await smtp.DisconnectAsync(true);
    }
}
