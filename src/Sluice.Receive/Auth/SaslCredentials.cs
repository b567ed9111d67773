// Decoding the base64 responses of AUTH PLAIN (RFC 4616) and AUTH LOGIN (RFC 4954 §4): strict
// base64 and UTF-8, so a malformed response is a 501, never a garbled user name.
using System.Text;
using System.Text.Unicode;

namespace Sluice.Receive.Auth;

public static class SaslCredentials
{
    /// <summary>
    /// RFC 4616 §2: message = [authzid] NUL authcid NUL passwd. Only an authzid that is empty or
    /// equal to authcid is accepted: nobody may act for someone else.
    /// </summary>
    public static bool TryDecodePlain(string base64, out string user, out string password)
    {
        user = password = "";
        if (!TryDecode(base64, out var bytes)) return false;
        var span = bytes.AsSpan();
        var first = span.IndexOf((byte)0);
        if (first < 0) return false;
        var rest = span[(first + 1)..];
        var second = rest.IndexOf((byte)0);
        if (second < 0) return false;
        var authzid = span[..first];
        var authcid = rest[..second];
        var passwd = rest[(second + 1)..];
        // authcid and passwd are 1*SAFE / 1*UTF8-SAFE: non-empty, and passwd has no further NUL.
        if (authcid.IsEmpty || passwd.IsEmpty || passwd.IndexOf((byte)0) >= 0) return false;
        if (HasLineBreak(authzid) || HasLineBreak(authcid)) return false;
        if (!authzid.IsEmpty && !authzid.SequenceEqual(authcid)) return false;
        user = Encoding.UTF8.GetString(authcid);
        password = Encoding.UTF8.GetString(passwd);
        return true;
    }

    /// <summary>One AUTH LOGIN response (user name or password): UTF-8 text without NUL, CR or LF.</summary>
    public static bool TryDecodeText(string base64, out string text)
    {
        text = "";
        if (!TryDecode(base64, out var bytes)) return false;
        if (bytes.AsSpan().IndexOfAny((byte)0, (byte)'\r', (byte)'\n') >= 0) return false;
        text = Encoding.UTF8.GetString(bytes);
        return true;
    }

    private static bool HasLineBreak(ReadOnlySpan<byte> name) => name.IndexOfAny((byte)'\r', (byte)'\n') >= 0;

    /// <summary>Base64 (RFC 4648 §4, padded, no white space: RFC 4954 §4) of valid UTF-8.</summary>
    private static bool TryDecode(string? base64, out byte[] bytes)
    {
        bytes = [];
        if (base64 is null || base64.Length % 4 != 0) return false;
        foreach (var c in base64)
            if (c is not ((>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '+' or '/' or '='))
                return false;
        var buffer = new byte[base64.Length / 4 * 3];
        if (!Convert.TryFromBase64String(base64, buffer, out var written)) return false;
        bytes = buffer[..written];
        return Utf8.IsValid(bytes);
    }
}
