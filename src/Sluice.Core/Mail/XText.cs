// RFC 3461 §4 xtext, the encoding of the DSN parameters ENVID and ORCPT on the wire: the
// receiver decodes them into the Envelope, the SMTP client encodes them again when relaying.
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace Sluice.Core.Mail;

public static class XText
{
    /// <summary>
    /// Encodes <paramref name="value"/> as xtext: "!".."~" except "+" and "=" stay as they are, every
    /// other octet (of the UTF-8 form) becomes "+" and two upper-case hex digits.
    /// </summary>
    public static string Encode(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        var output = new StringBuilder(bytes.Length);
        foreach (var b in bytes)
        {
            if (IsXChar(b)) output.Append((char)b);
            else output.Append('+').Append(Hex[b >> 4]).Append(Hex[b & 15]);
        }
        return output.ToString();
    }

    /// <summary>
    /// Decodes xtext; false when <paramref name="xtext"/> is null, holds a character outside "!".."~"
    /// or "=", or a "+" not followed by two hex digits (RFC 3461 §4 asks for upper case; lower case
    /// is accepted). Octets that are not valid UTF-8 decode to U+FFFD.
    /// </summary>
    public static bool TryDecode(string? xtext, [NotNullWhen(true)] out string? value)
    {
        value = null;
        if (xtext is null) return false;
        var bytes = new byte[xtext.Length];
        int n = 0;
        for (int i = 0; i < xtext.Length; i++)
        {
            var c = xtext[i];
            if (c is < '!' or > '~' or '=') return false;
            if (c != '+')
            {
                bytes[n++] = (byte)c;
                continue;
            }
            if (i + 2 >= xtext.Length || !char.IsAsciiHexDigit(xtext[i + 1]) || !char.IsAsciiHexDigit(xtext[i + 2])) return false;
            bytes[n++] = byte.Parse(xtext.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
            i += 2;
        }
        value = Encoding.UTF8.GetString(bytes, 0, n);
        return true;
    }

    /// <summary>
    /// RFC 6533 §3 utf-8-addr-xtext, for a non-ASCII address in a message/delivery-status field:
    /// QCHARs ("!".."~" except "+", "=" and "\") stay, every other character is "\x{HEX}".
    /// With <paramref name="unicode"/>, utf-8-addr-unitext for message/global-delivery-status: non-ASCII characters stay too.
    /// </summary>
    public static string EncodeUtf8Address(string address, bool unicode = false)
    {
        var output = new StringBuilder(address.Length);
        foreach (var rune in address.EnumerateRunes())
        {
            if (unicode && !rune.IsAscii) output.Append(rune.ToString());
            else if (rune.IsAscii && IsXChar((byte)rune.Value) && rune.Value != '\\') output.Append((char)rune.Value);
            else output.Append(CultureInfo.InvariantCulture, $"\\x{{{rune.Value:X2}}}");
        }
        return output.ToString();
    }

    /// <summary>RFC 3461 §4: xchar is any ASCII character from "!" to "~" except "+" and "=".</summary>
    private static bool IsXChar(byte b) => b is >= (byte)'!' and <= (byte)'~' and not (byte)'+' and not (byte)'=';

    private const string Hex = "0123456789ABCDEF";
}
