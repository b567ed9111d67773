// Plain messages sent to a running instance over SMTP (MailKit), one transaction per recipient.
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Sluice.EndToEnd;

internal static class TestMail
{
    public static async Task SendAsync(int port, params string[] recipients)
    {
        using var client = new SmtpClient { Timeout = 30_000 };
        await client.ConnectAsync("127.0.0.1", port, SecureSocketOptions.None);
        foreach (var rcpt in recipients)
        {
            var message = new MimeMessage { Subject = $"to {rcpt}", Body = new TextPart("plain") { Text = "hello\n" } };
            message.From.Add(MailboxAddress.Parse("sender@client.test"));
            message.To.Add(MailboxAddress.Parse(rcpt));
            await client.SendAsync(message);
        }
        await client.DisconnectAsync(true);
    }
}
