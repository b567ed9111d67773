// RFC 6152 §3: 8-bit data may go only to a server that offered 8BITMIME. For one that did not, the
// message is converted to 7-bit MIME (RFC 2045): 8-bit parts re-encoded (quoted-printable for text,
// as Postfix does), a non-MIME message made MIME, 8-bit header text put in RFC 2047 encoded-words.
// What cannot be converted, or would break a DKIM signature (Delivery.EightBitDkim), is returned (5.6.3).
using System.Text;
using System.Text.Unicode;
using MimeKit;
using Sluice.Core.Configuration;

namespace Sluice.Delivery.Smtp;

internal static class SevenBitDowngrade
{
    private static readonly FormatOptions Wire = new() { NewLineFormat = NewLineFormat.Dos };

    /// <summary>
    /// What a server without 8BITMIME gets: <paramref name="Converted"/> bytes (to sign and send), else the
    /// spooled bytes unchanged, unless <paramref name="Refusal"/> (a reply failing the recipients) says it gets nothing.
    /// <paramref name="Note"/> says what was done, for the delivery log.
    /// </summary>
    public readonly record struct Outcome(ReadOnlyMemory<byte>? Converted, string? Refusal, string Note);

    /// <summary>
    /// A byte of the message has its high bit set: in the body, or in the header section unless it may
    /// carry UTF-8 there (<paramref name="utf8Headers"/>: an SMTPUTF8 message to a server that offered SMTPUTF8, RFC 6532).
    /// </summary>
    public static bool HasEightBit(ReadOnlySpan<byte> message, bool utf8Headers)
    {
        var end = message.IndexOf("\r\n\r\n"u8);
        if (end < 0) return !utf8Headers && IsEightBit(message); // a header section alone
        return IsEightBit(message[(end + 4)..]) || !utf8Headers && IsEightBit(message[..end]);
    }

    /// <summary>The message for a server without 8BITMIME; <paramref name="signed"/> is what to do when it carries a DKIM-Signature.</summary>
    public static Outcome Convert(ReadOnlyMemory<byte> message, SignedEightBit signed, bool utf8Headers)
    {
        MimeMessage parsed;
        try
        {
            parsed = MimeMessage.Load(MessageBytes.OpenRead(message));
        }
        catch (FormatException)
        {
            return Refused("it is not a MIME structure that can be converted to 7 bits");
        }
        var note = "8-bit message converted to 7-bit MIME: the server does not offer 8BITMIME";
        if (parsed.Headers.Contains(HeaderId.DkimSignature))
        {
            // RFC 6376 §5.3: any change to the signed body breaks the signature.
            switch (signed)
            {
                case SignedEightBit.Bounce:
                    return Refused("converting it to 7 bits would break its DKIM-Signature (Delivery.EightBitDkim: bounce)");
                case SignedEightBit.Send:
                    return new(null, null, "8-bit message sent as is to a server without 8BITMIME: converting it would break its DKIM-Signature (Delivery.EightBitDkim: send)");
                default:
                    note += "; its DKIM-Signature no longer verifies (Delivery.EightBitDkim: convert)";
                    break;
            }
        }
        // RFC 2045 §4: a converted message must say it is MIME, whether or not it was before.
        if (!parsed.Headers.Contains(HeaderId.MimeVersion)) parsed.MimeVersion = new Version(1, 0);
        if (!utf8Headers) EncodeHeaders(parsed.Headers);
        using (var entities = new MimeIterator(parsed))
            while (entities.MoveNext())
            {
                if (!utf8Headers) EncodeHeaders(entities.Current.Headers);
                if (entities.Current is MimePart part) Reencode(part);
            }
        // Prepare picks an encoding for what is left needing one, e.g. a 7-bit part with lines over 998 octets.
        parsed.Prepare(EncodingConstraint.SevenBit);
        using var output = new MemoryStream(message.Length + message.Length / 4);
        parsed.WriteTo(Wire, output);
        // What MimeKit writes back as it was (a multipart's preamble, a nested message's header) may still be 8-bit.
        if (IsEightBit(output.GetBuffer().AsSpan(0, (int)output.Length)))
            return Refused("part of it (a preamble, epilogue or nested header) cannot be converted to 7 bits");
        return new(output.ToArray(), null, note);
    }

    /// <summary>RFC 6152 §3: a message that cannot go as 7 bits is returned rather than sent 8-bit.</summary>
    private static Outcome Refused(string why) =>
        new(null, $"554 5.6.3 the server does not offer 8BITMIME and the 8-bit message cannot be sent: {why}", "");

    /// <summary>
    /// An 8-bit part goes quoted-printable (text) or base64. A text part that names no charset gets one, as RFC 2045
    /// §5.2 would read it as us-ascii: utf-8 when its bytes are UTF-8, else unknown-8bit (RFC 1428 §3, sendmail's
    /// DefaultCharSet): any 8-bit charset named instead of it, iso-8859-1 say, would only be a guess.
    /// </summary>
    private static void Reencode(MimePart part)
    {
        if (part.ContentTransferEncoding is ContentEncoding.QuotedPrintable or ContentEncoding.Base64 or ContentEncoding.UUEncode || part.Content is null) return;
        using var content = new MemoryStream();
        part.Content.DecodeTo(content);
        var bytes = content.GetBuffer().AsSpan(0, (int)content.Length);
        if (!IsEightBit(bytes)) return;
        if (part is TextPart text && text.ContentType.Charset is null) text.ContentType.Charset = Utf8.IsValid(bytes) ? "utf-8" : "unknown-8bit";
        part.ContentTransferEncoding = part is TextPart ? ContentEncoding.QuotedPrintable : ContentEncoding.Base64;
    }

    /// <summary>
    /// Each field with 8-bit text is written again in RFC 2047 encoded-words (UTF-8), as MimeKit decoded it
    /// (UTF-8, else Latin-1); fields that are 7-bit keep their raw bytes.
    /// </summary>
    private static void EncodeHeaders(HeaderList headers)
    {
        foreach (var header in headers)
            if (IsEightBit(header.RawValue)) header.SetValue(Wire, Encoding.UTF8, header.Value);
    }

    private static bool IsEightBit(ReadOnlySpan<byte> bytes) => bytes.IndexOfAnyInRange((byte)0x80, (byte)0xFF) >= 0;
}
