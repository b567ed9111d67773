// Which envelope senders an AUTH login may use (Postfix's smtpd_sender_login_maps with
// reject_sender_login_mismatch): its own name when that is an address, and what Smtp.SenderLogins lists.
// Addresses are compared as mailboxes are looked up here: the local part in canonical form ("a"@d is a@d),
// without regard to case as MailboxMap does, and the domain in A-label form (RFC 5890).
using Sluice.Core.Mail;

namespace Sluice.Receive;

public sealed class SenderLoginMap
{
    private sealed record Senders(bool Anyone, HashSet<string> Addresses, HashSet<string> Domains);

    private readonly Dictionary<string, Senders> _logins = new(StringComparer.OrdinalIgnoreCase);

    public SenderLoginMap(IReadOnlyDictionary<string, List<string>> senderLogins)
    {
        foreach (var (login, entries) in senderLogins)
        {
            var senders = new Senders(entries.Contains("*"), new(StringComparer.OrdinalIgnoreCase), new(StringComparer.OrdinalIgnoreCase));
            foreach (var entry in entries)
            {
                if (entry.StartsWith('@') && Address.AsciiDomain(entry[1..]) is { } domain) senders.Domains.Add(domain);
                else if (Key(entry) is { } address) senders.Addresses.Add(address);
            }
            _logins[login] = senders;
        }
    }

    /// <summary>
    /// The null sender is always allowed: it names no one to impersonate, and auto-replies and MDNs are sent
    /// with it (RFC 3834 §3.3, RFC 8098 §3); bounces to it are never made, so it cannot aim backscatter either.
    /// </summary>
    public bool MayUse(string login, string sender)
    {
        if (sender.Length == 0) return true;
        if (Key(sender) is not { } address) return false;
        if (string.Equals(Key(login), address, StringComparison.OrdinalIgnoreCase)) return true;
        return _logins.TryGetValue(login, out var senders)
            && (senders.Anyone || senders.Addresses.Contains(address) || senders.Domains.Contains(address[(address.LastIndexOf('@') + 1)..]));
    }

    /// <summary>"canonical-local-part@a-label-domain", or null when the text is no address.</summary>
    private static string? Key(string address)
    {
        var at = address.LastIndexOf('@');
        if (at <= 0 || !LocalPart.TryParse(address.AsSpan(0, at), out var local)) return null;
        return Address.AsciiDomain(address[(at + 1)..]) is { } domain ? $"{local}@{domain}" : null;
    }
}
