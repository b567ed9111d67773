// The addresses in a message's "Delivered-To:" header fields (qmail-local's and Postfix local(8)'s
// delivery mark), read from the header section only (RFC 5322 §2.1: it ends at the first empty line).
using System.Text;

namespace Sluice.Receive;

internal static class DeliveredTo
{
    private static ReadOnlySpan<byte> FieldName => "delivered-to:"u8;

    public static List<string> Addresses(ReadOnlySpan<byte> message)
    {
        var found = new List<string>();
        while (message.Length > 0)
        {
            var end = message.IndexOf("\r\n"u8);
            var line = end < 0 ? message : message[..end];
            if (line.IsEmpty) break;
            if (line.Length > FieldName.Length && Ascii.EqualsIgnoreCase(line[..FieldName.Length], FieldName))
                found.Add(Encoding.UTF8.GetString(line[FieldName.Length..]).Trim().Trim('<', '>'));
            if (end < 0) break;
            message = message[(end + 2)..];
        }
        return found;
    }
}
