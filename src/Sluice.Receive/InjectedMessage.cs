// Preparing a message handed to `sluice inject` (qmail-inject's job): CRLF line endings, the
// RFC 5322 §3.6 headers a message must have (From, Date, Message-ID) added when missing, and with
// -t the recipients taken from To/Cc/Bcc and the Bcc field removed. Other bytes stay as given.
// A missing From: names the envelope sender, with sendmail -F's display name when one is given.
using System.Text;
using MimeKit;
using MimeKit.Utils;

namespace Sluice.Receive;

public static class InjectedMessage
{
    public sealed record Prepared(byte[] Message, IReadOnlyList<string> HeaderRecipients);

    /// <param name="senderName">The display name for an added From: (sendmail's -F); null: the bare address.</param>
    public static Prepared Prepare(ReadOnlySpan<byte> input, string sender, bool recipientsFromHeaders, string hostname, DateTimeOffset now,
        string? senderName = null)
    {
        var text = ToCrlf(input);
        var split = text.IndexOf("\r\n\r\n"u8);
        var headerBlock = split < 0 ? text : text[..(split + 2)];
        var body = split < 0 ? [] : text[(split + 2)..];

        var fields = SplitFields(headerBlock);
        var recipients = new List<string>();
        var output = new MemoryStream(text.Length + 256);
        var present = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var field in fields)
        {
            var colon = field.IndexOf(':', StringComparison.Ordinal);
            var name = colon < 0 ? "" : field[..colon].Trim();
            present.Add(name);
            if (recipientsFromHeaders && name.ToUpperInvariant() is "TO" or "CC" or "BCC"
                && InternetAddressList.TryParse(field[(colon + 1)..], out var list))
                recipients.AddRange(list.Mailboxes.Select(m => m.Address));
            if (recipientsFromHeaders && name.Equals("Bcc", StringComparison.OrdinalIgnoreCase)) continue;
            output.Write(Encoding.UTF8.GetBytes(field));
        }
        void Add(string header) => output.Write(Encoding.UTF8.GetBytes(header + "\r\n"));
        if (!present.Contains("From")) Add($"From: {FromAddress(sender.Length == 0 ? $"MAILER-DAEMON@{hostname}" : sender, senderName)}");
        if (!present.Contains("Date")) Add($"Date: {DateUtils.FormatDate(now)}");
        if (!present.Contains("Message-ID")) Add($"Message-ID: <{MimeUtils.GenerateMessageId(hostname)}>");
        output.Write("\r\n"u8);
        output.Write(body.Length > 0 ? body[2..] : []);
        return new Prepared(output.ToArray(), recipients);
    }

    /// <summary>"Name <addr>", the name quoted or RFC 2047-encoded by MimeKit as it needs; "<addr>" without one.</summary>
    private static string FromAddress(string address, string? name) =>
        string.IsNullOrEmpty(name) ? $"<{address}>" : new MailboxAddress(name, address).ToString(FormatOptions.Default, encode: true);

    /// <summary>Header fields with their folded continuation lines and CRLFs, in order.</summary>
    private static List<string> SplitFields(ReadOnlySpan<byte> headerBlock)
    {
        var fields = new List<string>();
        foreach (var line in Encoding.UTF8.GetString(headerBlock).Split("\r\n"))
        {
            if (line.Length == 0) continue;
            if ((line[0] == ' ' || line[0] == '\t') && fields.Count > 0) fields[^1] += line + "\r\n";
            else fields.Add(line + "\r\n");
        }
        return fields;
    }

    /// <summary>Every line ending becomes CRLF (RFC 5322 §2.3); the message ends with one.</summary>
    private static byte[] ToCrlf(ReadOnlySpan<byte> input)
    {
        var output = new MemoryStream(input.Length + input.Length / 32 + 2);
        for (int i = 0; i < input.Length; i++)
        {
            var b = input[i];
            if (b == '\r' && i + 1 < input.Length && input[i + 1] == '\n') continue;
            if (b == '\n' || b == '\r') output.Write("\r\n"u8);
            else output.WriteByte(b);
        }
        if (output.Length > 0 && !input.EndsWith("\n"u8)) output.Write("\r\n"u8);
        return output.ToArray();
    }
}
