// The smtp-users file format ("name:bcrypt-hash" lines, # comments) and its atomic rewrite, kept
// apart from the store so that reading and editing agree on what a line is.
using System.Text;
using Sluice.Core.IO;

namespace Sluice.Receive.Auth;

internal static class UserFile
{
    // RFC 4616 §2: an authcid of up to 255 octets of UTF-8 must be accepted; we store no more.
    public const int MaxNameBytes = 255;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// False for blank and comment lines. Otherwise true, with <paramref name="name"/> null (or the
    /// hash empty) when the line is malformed.
    /// </summary>
    public static bool TryParse(string line, out string? name, out string hash)
    {
        name = null;
        hash = "";
        var text = line.TrimEnd('\r');
        if (string.IsNullOrWhiteSpace(text) || text.TrimStart().StartsWith('#')) return false;
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0) return true;
        name = text[..colon];
        hash = text[(colon + 1)..].Trim();
        return true;
    }

    public static void CheckName(string user)
    {
        ArgumentNullException.ThrowIfNull(user);
        string? why = null;
        if (user.Length == 0) why = "is empty";
        else if (user.Any(char.IsWhiteSpace)) why = "contains white space";
        else if (user.Any(char.IsControl)) why = "contains a control character";
        else if (user.Contains(':', StringComparison.Ordinal)) why = "contains ':', which separates name and hash in the users file";
        else if (user[0] == '#') why = "starts with '#', which marks a comment in the users file";
        else if (!IsUtf8(user, out var bytes)) why = "is not valid Unicode";
        else if (bytes > MaxNameBytes) why = $"is {bytes} bytes long in UTF-8; at most {MaxNameBytes} are allowed";
        if (why is not null) throw new ArgumentException($"user name \"{user}\" {why}", nameof(user));
    }

    private static bool IsUtf8(string s, out int bytes)
    {
        try
        {
            bytes = StrictUtf8.GetByteCount(s);
            return true;
        }
        catch (EncoderFallbackException)
        {
            bytes = 0;
            return false;
        }
    }

    /// <summary>
    /// Replaces <paramref name="user"/>'s line with <paramref name="replacement"/> (appending it if
    /// absent; removing the line when null), keeping every other line. True if the user was there.
    /// </summary>
    public static bool Rewrite(string path, string user, string? replacement)
    {
        var full = System.IO.Path.GetFullPath(path);
        var lines = File.Exists(full) ? File.ReadAllLines(full, StrictUtf8).ToList() : [];
        var found = false;
        for (int i = 0; i < lines.Count; i++)
        {
            if (!TryParse(lines[i], out var name, out _) || name != user) continue;
            if (!found && replacement is not null) lines[i] = replacement;
            else lines.RemoveAt(i--);
            found = true;
        }
        if (!found && replacement is null) return false;
        if (!found) lines.Add(replacement!);
        var dir = System.IO.Path.GetDirectoryName(full)!;
        PrivateFiles.CreateDirectory(dir); // DataDir, when passwd runs first
        var text = lines.Count == 0 ? "" : string.Join('\n', lines) + "\n";
        AtomicFile.Write(full, StrictUtf8.GetBytes(text), AtomicFile.OwnerOnly);
        return found;
    }
}
