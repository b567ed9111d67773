// What a DSN returns of the original message (RFC 3461 §4.3 RET; RFC 6522 §3, the report's third
// part): all of it as message/rfc822, or its header section as text/rfc822-headers (RFC 6522 §4);
// for an SMTPUTF8 message message/global or message/global-headers (RFC 6533 §6).
using MimeKit;

namespace Sluice.Scheduling.Bounces;

internal sealed record ReturnedContent(MimeEntity Part, bool Truncated, int OriginalBytes)
{
    /// <summary>A larger original goes back as headers only, so a bounce never carries a huge message back.</summary>
    public const int MaxFullBytes = 10 * 1024 * 1024;

    /// <param name="original">The message as spooled: CRLF lines.</param>
    /// <param name="international">The original is an SMTPUTF8 message.</param>
    public static ReturnedContent For(ReadOnlySpan<byte> original, bool full, bool international = false)
    {
        var truncated = full && original.Length > MaxFullBytes;
        if (full && !truncated) return new(Attach("message", international ? "global" : "rfc822", original), false, original.Length);
        var headerEnd = original.IndexOf("\r\n\r\n"u8);
        var headers = headerEnd < 0 ? original : original[..(headerEnd + 2)];
        return new(international ? Attach("message", "global-headers", headers) : Attach("text", "rfc822-headers", headers), truncated, original.Length);
    }

    /// <summary>The bytes go out as they are (no re-encoding, so signatures still verify): 7bit, or 8bit if any octet needs it.</summary>
    private static MimePart Attach(string type, string subtype, ReadOnlySpan<byte> bytes) => new(type, subtype)
    {
        Content = new MimeContent(new MemoryStream(bytes.ToArray())),
        ContentTransferEncoding = System.Text.Ascii.IsValid(bytes) ? ContentEncoding.SevenBit : ContentEncoding.EightBit,
    };
}
