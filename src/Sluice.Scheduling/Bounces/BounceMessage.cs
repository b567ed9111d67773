// A delivery status notification (RFC 3464) in a multipart/report (RFC 6522), built with MimeKit:
// a human explanation, the machine-readable per-recipient status, and the original or its headers.
// A report on an SMTPUTF8 message takes the RFC 6533 forms (message/global-delivery-status and
// message/global or message/global-headers), its fields in UTF-8, never RFC 2047 encoded-words.
using System.Globalization;
using MimeKit;
using MimeKit.Utils;
using Sluice.Core.Mail;
using Sluice.Queue;

namespace Sluice.Scheduling.Bounces;

internal static class BounceMessage
{
    /// <summary>RFC 3464 §2.3.3 Action values this MTA reports.</summary>
    public enum ReportAction { Failed, Delayed, Delivered, Relayed }

    /// <param name="OriginalRecipient">The RCPT's ORCPT as the Envelope keeps it ("type;address"), or null.</param>
    /// <param name="Text">The reply or reason as the delivery log has it, for the human part.</param>
    /// <param name="Remote">
    /// The next hop's reply this outcome is, reported as Remote-MTA and "smtp;" Diagnostic-Code; null for an outcome of
    /// our own making, whose Diagnostic-Code is "X-Sluice; TEXT" (as Postfix's is X-Postfix), with no Remote-MTA.
    /// </param>
    public sealed record ReportedRecipient(string Address, string? OriginalRecipient, ReportAction Action, string Status, string Text,
        RemoteReply? Remote = null);

    /// <summary>RFC 3464 §2.3.6: the diagnostic-type of the errors we make ourselves, an unregistered "X-" name as Postfix's X-Postfix is.</summary>
    public const string OwnDiagnosticType = "X-Sluice";

    /// <summary>
    /// A report on <paramref name="recipients"/>, all failed (a bounce), all delayed (a warning) or all delivered
    /// or relayed, to <paramref name="to"/>: the original's sender, or the postmaster when the original had a
    /// null sender (a double bounce, which carries the failed message whole).
    /// </summary>
    public static byte[] Build(string hostname, QueuedMessage original, ReadOnlySpan<byte> originalMessage,
        IReadOnlyList<ReportedRecipient> recipients, string to, DateTimeOffset now)
    {
        var failed = recipients.Any(r => r.Action == ReportAction.Failed);
        var delayed = !failed && recipients.Any(r => r.Action == ReportAction.Delayed);
        var doubleBounce = failed && original.Sender.Length == 0;
        var international = original.Envelope.SmtpUtf8; // RFC 6533 §6: an internationalised message gets an internationalised report
        var message = new MimeMessage();
        message.From.Add(new MailboxAddress("Mail Delivery System", $"MAILER-DAEMON@{hostname}"));
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = doubleBounce ? "Undelivered Mail Delivery Report (double bounce)"
            : failed ? "Undelivered Mail Returned to Sender"
            : delayed ? "Delayed Mail (still being retried)"
            : "Successful Mail Delivery Report";
        message.Date = now;
        message.MessageId = MimeUtils.GenerateMessageId(hostname);
        message.Headers.Add("Auto-Submitted", "auto-replied"); // RFC 3834: no auto-reply loops

        // RFC 3461 §4.3: RET chooses what a failure DSN returns; a success DSN returns headers only.
        // A double bounce returns the failed report whole (up to the cap): the postmaster needs all of it.
        var returned = ReturnedContent.For(originalMessage, full: doubleBounce || (failed && original.Envelope.Return == DsnReturn.Full), international);
        var report = new MultipartReport(international ? "global-delivery-status" : "delivery-status");
        report.Add(new TextPart("plain") { Text = Explanation(hostname, recipients, failed, delayed, doubleBounce, returned) });
        report.Add(Status(hostname, original, recipients, now, international));
        report.Add(returned.Part);
        message.Body = report;

        using var output = new MemoryStream();
        // International: UTF-8 header fields as they are (RFC 6532), which an SMTPUTF8 report may carry and RFC 6533 asks for.
        message.WriteTo(new FormatOptions { NewLineFormat = NewLineFormat.Dos, International = international }, output);
        return output.ToArray();
    }

    private static string Explanation(string hostname, IReadOnlyList<ReportedRecipient> recipients, bool failed, bool delayed,
        bool doubleBounce, ReturnedContent returned)
    {
        var text = $"This is the mail system at host {hostname}.\n\n";
        text += doubleBounce
            ? "A message with a null sender (a delivery report) could not be delivered\nto one or more recipients, and cannot be returned. It's attached below.\n\n"
            : failed
            ? "I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients. It's attached below.\n\n"
            : delayed
            ? "This is a warning only: you do not need to resend your message.\nIt has not yet been delivered to the recipients below; delivery\nwill be tried again. Its headers are attached.\n\n"
            : "Your message was delivered to the recipients below, as you asked.\nIts headers are attached.\n\n";
        text += string.Join("\n", recipients.Select(r => $"<{r.Address}>: {LineFor(r)}")) + "\n";
        if (returned.Truncated)
            text += string.Create(CultureInfo.InvariantCulture,
                $"\nThe message was {returned.OriginalBytes} bytes, more than the {ReturnedContent.MaxFullBytes} this system returns whole,\nso only its headers are attached.\n");
        return text;
    }

    private static string LineFor(ReportedRecipient r) => r.Action switch
    {
        ReportAction.Delivered => "delivered to the mailbox",
        // RFC 3464 §2.3.3: "relayed" to a system that sends no further notices.
        ReportAction.Delayed => $"delayed, still trying: {r.Text}",
        ReportAction.Relayed => $"relayed to a mail system that does not send delivery notices ({r.Text})",
        _ => r.Text,
    };

    /// <summary>
    /// The message/delivery-status part (message/global-delivery-status for <paramref name="international"/>): per-message
    /// fields (§2.2), then one group per recipient (§2.3), in the RFC's order.
    /// </summary>
    private static MessageDeliveryStatus Status(string hostname, QueuedMessage original, IReadOnlyList<ReportedRecipient> recipients,
        DateTimeOffset now, bool international)
    {
        var status = new MessageDeliveryStatus();
        if (international) status.ContentType.MediaSubtype = "global-delivery-status";
        var perMessage = new HeaderList();
        if (original.Envelope.EnvelopeId is { } envid) perMessage.Add("Original-Envelope-Id", DsnFields.EnvelopeId(envid)); // §2.2.1
        perMessage.Add("Reporting-MTA", $"dns; {hostname}");
        perMessage.Add("X-Sluice-Queue-ID", original.Id);
        perMessage.Add("Arrival-Date", DateUtils.FormatDate(original.ReceivedAt));
        status.StatusGroups.Add(perMessage);
        foreach (var r in recipients)
        {
            var group = new HeaderList();
            if (r.OriginalRecipient is { } orcpt) group.Add(Field("Original-Recipient", DsnFields.OriginalRecipient(orcpt, international), international)); // §2.3.1
            group.Add(Field("Final-Recipient", DsnFields.FinalRecipient(r.Address, international), international));
            group.Add("Action", r.Action.ToString().ToLowerInvariant());
            group.Add("Status", r.Status);
            // §2.3.5: the MTA whose reply this is, named as we looked it up (the MX host, or the route's host); §2.3.6: its reply itself.
            if (r.Remote is { } remote)
            {
                group.Add("Remote-MTA", $"dns; {remote.Mta}");
                group.Add(Field("Diagnostic-Code", $"smtp; {remote.Reply}", international));
            }
            else if (r.Action != ReportAction.Delivered) group.Add(Field("Diagnostic-Code", $"{OwnDiagnosticType}; {r.Text}", international));
            group.Add("Last-Attempt-Date", DateUtils.FormatDate(now));
            status.StatusGroups.Add(group);
        }
        return status;
    }

    /// <summary>
    /// A field that may hold UTF-8 (an address, a reply): in a global report written as UTF-8 (RFC 6533 §6), never as the
    /// RFC 2047 encoded-words MimeKit makes by default, which DSN readers do not decode; in a plain one, where RFC 3464 §2.1
    /// allows only ASCII, a non-ASCII character becomes "?" (the delivery log keeps the reply whole). Long values are folded.
    /// </summary>
    private static Header Field(string name, string value, bool international)
    {
        if (!international && !System.Text.Ascii.IsValid(value))
            value = string.Concat(value.Select(c => char.IsAscii(c) ? c : '?'));
        var header = new Header(name, "");
        header.SetValue(new FormatOptions { International = international }, System.Text.Encoding.UTF8, value);
        return header;
    }

    /// <summary>The RFC 3463 status of a failure text, defaulting to 5.0.0 (or 4.4.7 for an expiry).</summary>
    public static string StatusOf(string text, bool expired) =>
        expired ? "4.4.7" : EnhancedStatus.Find(text) is { } s && s[0] == '5' ? s : "5.0.0";

    /// <summary>The RFC 3463 status of a deferral text, defaulting to 4.0.0.</summary>
    public static string DelayStatusOf(string text) => EnhancedStatus.Find(text) is { } s && s[0] == '4' ? s : "4.0.0";

    public static string FormatAge(TimeSpan age) =>
        age.TotalDays >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{age.TotalDays:0.#} days")
        : string.Create(CultureInfo.InvariantCulture, $"{age.TotalHours:0.#} hours");
}
