// Mailbox address helpers for envelope addresses already stripped of their angle brackets.
using System.Globalization;

namespace Sluice.Core.Mail;

public static class Address
{
    /// <summary>The domain part, lower-cased ("" for the null sender or a bare local part).</summary>
    public static string DomainOf(string address)
    {
        var at = address.LastIndexOf('@');
        return at < 0 ? "" : address[(at + 1)..].ToLowerInvariant();
    }

    /// <summary>The local part as written, quotes and all; the domain never holds an '@', so the last one divides them.</summary>
    public static string LocalPartOf(string address)
    {
        var at = address.LastIndexOf('@');
        return at < 0 ? address : address[..at];
    }

    /// <summary>"local@domain" with the local part's content in its canonical form (<see cref="LocalPart"/>), the domain as given.</summary>
    public static string Of(string localContent, string domain) => $"{LocalPart.Canonical(localContent)}@{domain}";

    /// <summary>The address with its local part canonical ("\"ab\"@d" → ab@d), case and domain as given.</summary>
    public static string Canonical(string address)
    {
        var at = address.LastIndexOf('@');
        return at < 0 ? LocalPart.Canonical(LocalPart.Content(address)) : Of(LocalPart.Content(address[..at]), address[(at + 1)..]);
    }

    /// <summary>The A-label form of a domain, lower-cased, so acceptance and routing agree on names (RFC 5890); null if not a valid IDN.</summary>
    public static string? AsciiDomain(string domain)
    {
        domain = domain.ToLowerInvariant();
        if (domain.All(char.IsAscii)) return domain;
        try
        {
            var ascii = new IdnMapping { UseStd3AsciiRules = true }.GetAscii(domain);
            // Only a name that already is what it maps to is that name: IDNA's look-alike dots (U+3002,
            // U+FF0E, U+FF61) and, with ICU, UTS #46 mappings (fullwidth, soft hyphen, zero-width space)
            // would make another string count as one of our domains while delivery routes the raw one.
            return new IdnMapping().GetUnicode(ascii) == domain ? ascii : null;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}
