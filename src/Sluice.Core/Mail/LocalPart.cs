// RFC 5321 §4.1.2 local parts (Dot-string / Quoted-string, with RFC 6531 §3.3's UTF-8) and the one
// form Sluice keeps them in everywhere (envelope, spool, lookups, Delivered-To, the wire): the content
// as a Dot-string when it is one, else quoted with only '"' and '\' escaped. RFC 5322 §3.2.4 makes the
// quotes invisible, so "ab"@d and ab@d are one mailbox, and §4.1.2 asks senders to quote only where
// needed: the canonical form is also what we send on (Postfix's quote_821_local does the same).
using System.Text;

namespace Sluice.Core.Mail;

public static class LocalPart
{
    /// <summary>
    /// Parses a local part as it was sent into its canonical form; false when it is neither a Dot-string
    /// nor a Quoted-string. Non-ASCII is taken as atext and qtext (RFC 6531); whether it is allowed at all
    /// (SMTPUTF8) is the caller's question. Control characters never are.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<char> text, out string canonical)
    {
        canonical = "";
        if (text.Length > 0 && text[0] == '"')
        {
            if (!TryUnquote(text, out var content)) return false;
            canonical = Canonical(content);
            return true;
        }
        if (!IsDotString(text)) return false;
        canonical = text.ToString();
        return true;
    }

    /// <summary>What a local part says, its quotes and quoted-pair backslashes taken off ("\"a\\\"b\"" → a"b).</summary>
    public static string Content(string local) => local.StartsWith('"') && TryUnquote(local, out var content) ? content : local;

    /// <summary>The canonical form of a local part's content: itself when a Dot-string, else a Quoted-string escaping only '"' and '\'.</summary>
    public static string Canonical(string content)
    {
        if (IsDotString(content)) return content;
        var quoted = new StringBuilder(content.Length + 4).Append('"');
        foreach (var c in content)
        {
            if (c is '"' or '\\') quoted.Append('\\');
            quoted.Append(c);
        }
        return quoted.Append('"').ToString();
    }

    /// <summary>Dot-string = Atom *("." Atom): no empty atom, so no leading, trailing or doubled dot.</summary>
    public static bool IsDotString(ReadOnlySpan<char> s)
    {
        if (s.IsEmpty || s[0] == '.' || s[^1] == '.') return false;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '.' ? s[i - 1] == '.' : !IsAtext(s[i])) return false;
        }
        return true;
    }

    /// <summary>RFC 5322 §3.2.3 atext, and RFC 6531's UTF8-non-ascii.</summary>
    private static bool IsAtext(char c) =>
        char.IsAsciiLetterOrDigit(c) || c is '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '/' or '=' or '?' or '^' or '_' or '`' or '{' or '|' or '}' or '~'
        || IsNonAsciiText(c);

    private static bool IsNonAsciiText(char c) => c > '\x7F' && !char.IsControl(c);

    /// <summary>Quoted-string = DQUOTE *QcontentSMTP DQUOTE; QcontentSMTP = qtextSMTP / "\" followed by an ASCII graphic or space.</summary>
    private static bool TryUnquote(ReadOnlySpan<char> text, out string content)
    {
        content = "";
        if (text.Length < 2 || text[0] != '"' || text[^1] != '"') return false;
        var inner = text[1..^1];
        var result = new StringBuilder(inner.Length);
        for (int i = 0; i < inner.Length; i++)
        {
            var c = inner[i];
            if (c == '\\')
            {
                if (++i == inner.Length || inner[i] is < ' ' or > '~') return false;
                c = inner[i];
            }
            // qtextSMTP: %d32-33 / %d35-91 / %d93-126 (no '"', no '\'), and UTF8-non-ascii.
            else if (c == '"' || (c is < ' ' or > '~' && !IsNonAsciiText(c))) return false;
            result.Append(c);
        }
        content = result.ToString();
        return true;
    }
}
