// RFC 6152 §3: an 8-bit body may go only to a server that offered 8BITMIME. To one that did not, a
// MIME message's 8-bit parts are re-encoded to 7 bits (quoted-printable for text) as Postfix does;
// everything else of the message is written back as it was. A message carrying a DKIM signature is
// the exception: re-encoding changes the signed body, so it goes as it is and the delivery log says so.
using MimeKit;

namespace Sluice.Delivery.Smtp;

internal static class SevenBitDowngrade
{
    private static readonly FormatOptions Wire = new() { NewLineFormat = NewLineFormat.Dos };

    /// <summary>A byte of the body (after the blank line ending the header section) has its high bit set.</summary>
    public static bool HasEightBitBody(ReadOnlySpan<byte> message)
    {
        var end = message.IndexOf("\r\n\r\n"u8);
        return end >= 0 && message[(end + 4)..].IndexOfAnyInRange((byte)0x80, (byte)0xFF) >= 0;
    }

    /// <summary>
    /// The message re-encoded for a server without 8BITMIME, or null when it must go unchanged (a DKIM
    /// signature or an unreadable MIME structure forbids touching it); and what was done, for the delivery log.
    /// </summary>
    public static (ReadOnlyMemory<byte>? Converted, string Note) Convert(ReadOnlyMemory<byte> message)
    {
        MimeMessage parsed;
        try
        {
            parsed = MimeMessage.Load(MessageBytes.OpenRead(message));
        }
        catch (FormatException)
        {
            return (null, "8-bit body sent as is to a server without 8BITMIME: not a MIME message that can be re-encoded");
        }
        if (parsed.Headers.Contains(HeaderId.DkimSignature))
            return (null, "8-bit body sent as is to a server without 8BITMIME: converting it would break its DKIM-Signature");
        // Quoted-printable for each part declared 8bit or binary, as Postfix does (it keeps text readable); Prepare
        // then picks an encoding for any part left with 8-bit content, nested messages included. Untouched headers keep their raw bytes.
        using (var parts = new MimeIterator(parsed))
            while (parts.MoveNext())
                if (parts.Current is MimePart { ContentTransferEncoding: ContentEncoding.EightBit or ContentEncoding.Binary } part)
                    part.ContentTransferEncoding = ContentEncoding.QuotedPrintable;
        parsed.Prepare(EncodingConstraint.SevenBit);
        using var output = new MemoryStream(message.Length + message.Length / 4);
        parsed.WriteTo(Wire, output);
        return (output.ToArray(), "8-bit body converted to 7-bit MIME: the server does not offer 8BITMIME");
    }
}
