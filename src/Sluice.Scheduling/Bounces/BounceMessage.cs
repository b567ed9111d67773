// A delivery status notification (RFC 3464) in a multipart/report (RFC 6522), built with MimeKit:
// a human explanation, the machine-readable per-recipient status, and the original headers.
using System.Globalization;
using MimeKit;
using MimeKit.Utils;
using Sluice.Core.Mail;
using Sluice.Queue;

namespace Sluice.Scheduling.Bounces;

internal static class BounceMessage
{
    public sealed record FailedRecipient(string Address, string Text, string Status);

    public static byte[] Build(string hostname, QueuedMessage original, ReadOnlySpan<byte> originalMessage,
        IReadOnlyList<FailedRecipient> failures, DateTimeOffset now)
    {
        var message = new MimeMessage();
        message.From.Add(new MailboxAddress("Mail Delivery System", $"MAILER-DAEMON@{hostname}"));
        message.To.Add(MailboxAddress.Parse(original.Sender));
        message.Subject = "Undelivered Mail Returned to Sender";
        message.Date = now;
        message.MessageId = MimeUtils.GenerateMessageId(hostname);
        message.Headers.Add("Auto-Submitted", "auto-replied"); // RFC 3834: no auto-reply loops

        var report = new MultipartReport("delivery-status");
        var lines = string.Join("\n", failures.Select(f => $"<{f.Address}>: {f.Text}"));
        report.Add(new TextPart("plain")
        {
            Text = $"This is the mail system at host {hostname}.\n\n"
                + "I'm sorry to have to inform you that your message could not\n"
                + "be delivered to one or more recipients. It's attached below.\n\n"
                + lines + "\n",
        });

        var status = new MessageDeliveryStatus();
        var perMessage = new HeaderList
        {
            { "Reporting-MTA", $"dns; {hostname}" },
            { "X-Sluice-Queue-ID", original.Id },
            { "Arrival-Date", DateUtils.FormatDate(original.ReceivedAt) },
        };
        status.StatusGroups.Add(perMessage);
        foreach (var f in failures)
        {
            status.StatusGroups.Add(new HeaderList
            {
                { "Final-Recipient", $"rfc822; {f.Address}" },
                { "Action", "failed" },
                { "Status", f.Status },
                { "Diagnostic-Code", $"smtp; {f.Text}" },
                { "Last-Attempt-Date", DateUtils.FormatDate(now) },
            });
        }
        report.Add(status);

        var headerEnd = originalMessage.IndexOf("\r\n\r\n"u8);
        var headers = headerEnd < 0 ? originalMessage : originalMessage[..(headerEnd + 2)];
        report.Add(new MimePart("text", "rfc822-headers")
        {
            Content = new MimeContent(new MemoryStream(headers.ToArray())),
            ContentTransferEncoding = ContentEncoding.EightBit,
        });
        message.Body = report;

        using var output = new MemoryStream();
        message.WriteTo(new FormatOptions { NewLineFormat = NewLineFormat.Dos }, output);
        return output.ToArray();
    }

    /// <summary>The RFC 3463 status of a failure text, defaulting to 5.0.0 (or 4.4.7 for an expiry).</summary>
    public static string StatusOf(string text, bool expired) =>
        expired ? "4.4.7" : EnhancedStatus.Find(text) is { } s && s[0] == '5' ? s : "5.0.0";

    public static string FormatAge(TimeSpan age) =>
        age.TotalDays >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{age.TotalDays:0.#} days")
        : string.Create(CultureInfo.InvariantCulture, $"{age.TotalHours:0.#} hours");
}
