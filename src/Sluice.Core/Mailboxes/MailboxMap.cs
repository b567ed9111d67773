// Who lives at a local domain (qmail's assign and virtualdomains, Postfix's virtual(8) maps): users
// with an optional quota, aliases (one to several, "@domain" catch-alls), address extensions and the
// role accounts every domain has, the SRS domain's rewritten senders, and the users' AUTH passwords.
// Pure lookups, no I/O: the receiver asks at RCPT and AUTH, whatever queues mail asks to expand
// aliases (AliasSplit), the Maildir agent at delivery, and a reload swaps the whole map.
using Sluice.Core.Configuration;
using Sluice.Core.Mail;

namespace Sluice.Core.Mailboxes;

/// <param name="Directory">The Maildir, relative to Mailboxes.Root: "alice", or "example.net/alice" in a virtual domain (see <see cref="MailboxMap.MaildirName"/>).</param>
/// <param name="Folder">The Maildir++ folder an address extension names ("tag" for ".tag"), or null for the inbox.</param>
public sealed record Mailbox(string Directory, string? Folder, long? QuotaBytes);

/// <summary>What one address at a local domain is: a mailbox, an alias (its targets), or neither (unknown).</summary>
public readonly record struct MailboxLookup(Mailbox? Mailbox, IReadOnlyList<string>? AliasTargets)
{
    public bool Unknown => Mailbox is null && AliasTargets is null;
}

/// <param name="Recipients">Final addresses: local mailboxes and remote addresses, each once.</param>
/// <param name="Aliases">The alias addresses gone through on the way, empty when the address was no alias.</param>
public sealed record AliasExpansion(IReadOnlyList<string> Recipients, IReadOnlyList<string> Aliases);

public sealed class MailboxMap
{
    /// <summary>Aliases of aliases deeper than this are refused as a loop (Postfix's default is 1000; ten is plenty for a map).</summary>
    public const int MaxAliasDepth = 10;
    private const string Postmaster = "postmaster";

    private readonly HashSet<string> _domains = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _closedDomains = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, long?> _users = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, string> _passwordHashes = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, string[]> _aliases = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, string> _directories = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _roles = new(StringComparer.OrdinalIgnoreCase) { Postmaster };
    private readonly char[] _separators;

    /// <param name="time">The clock SRS timestamps are made and checked with.</param>
    public MailboxMap(SluiceOptions options, TimeProvider? time = null)
    {
        var m = options.Mailboxes;
        _separators = [.. m.ExtensionSeparators];
        CreateExtensionFolders = m.CreateExtensionFolders;
        foreach (var role in m.RoleAccounts) _roles.Add(LocalPart.Content(role)); // looked up by content, as local parts are
        var mailboxDomains = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (domain, dir) in m.Domains)
        {
            mailboxDomains.Add(Ascii(domain));
            _directories[Ascii(domain)] = dir;
        }
        foreach (var (user, u) in m.Users)
        {
            var key = Key(user);
            _users[key] = u.Quota?.Bytes;
            if (u.PasswordHash is { } hash) _passwordHashes[key] = hash;
            _closedDomains.Add(Address.DomainOf(key));
            mailboxDomains.Add(Address.DomainOf(key));
        }
        foreach (var (alias, targets) in m.Aliases)
        {
            _aliases[Key(alias)] = [.. targets.Select(Address.Canonical)];
            mailboxDomains.Add(Address.DomainOf(Key(alias)));
        }
        _domains.UnionWith(mailboxDomains);
        foreach (var d in options.Smtp.LocalDomains) _domains.Add(Ascii(d));
        if (m.Srs is { } srs)
        {
            Srs = new SenderRewriting(Ascii(srs.Domain), srs.Secret, srs.MaxAgeDays, time ?? TimeProvider.System);
            // A domain used for SRS alone has nobody else: any other local part there is unknown, not a Maildir.
            if (_domains.Add(Srs.Domain)) _closedDomains.Add(Srs.Domain);
            mailboxDomains.Add(Srs.Domain);
        }
        MailboxDomains = [.. mailboxDomains.Order(StringComparer.Ordinal)];
    }

    /// <summary>Sender rewriting for forwarded mail, when Mailboxes.Srs is configured.</summary>
    public SenderRewriting? Srs { get; }

    public bool CreateExtensionFolders { get; }

    /// <summary>Domains the Mailboxes section names (users, aliases, virtual domains, SRS): local, and delivered to Maildirs.</summary>
    public IReadOnlyList<string> MailboxDomains { get; }

    /// <summary>Smtp.LocalDomains and the <see cref="MailboxDomains"/>: mail to them is ours to deliver, checked at RCPT.</summary>
    public bool IsLocal(string domain) => Address.AsciiDomain(domain) is { } d && _domains.Contains(d);

    /// <summary>
    /// One step of lookup: the exact address, a role account, the address without its extension, the
    /// domain's catch-all, and in a domain with no users listed any local part that can name a Maildir.
    /// </summary>
    public MailboxLookup Find(string address)
    {
        var domain = Ascii(Address.DomainOf(address));
        var local = LookupLocal(address);
        if (Exact(local, domain, null) is { Unknown: false } exact) return exact;
        if (_roles.Contains(local) && MailboxAt(local, domain, null, null) is { } role) return new(role, null);
        var split = _separators.Length == 0 ? -1 : local.IndexOfAny(_separators);
        var (user, extension) = split > 0 ? (local[..split], local[(split + 1)..]) : (local, null);
        if (extension is not null && Exact(user, domain, extension) is { Unknown: false } extended) return extended;
        if (_aliases.TryGetValue("@" + domain, out var catchAll)) return new(null, catchAll);
        if (!_closedDomains.Contains(domain) && MailboxAt(user, domain, extension, null) is { } open) return new(open, null);
        return default;
    }

    /// <summary>The bcrypt hash Mailboxes.Users gives the user at <paramref name="address"/>, or null.</summary>
    public string? PasswordHashOf(string address) =>
        address.Contains('@', StringComparison.Ordinal) && _passwordHashes.TryGetValue(Key(address), out var hash) ? hash : null;

    /// <summary>
    /// The envelope sender for mail an alias forwards to another domain: SRS-rewritten when configured,
    /// except the null sender and our own domains' senders, which SPF already lets us send for.
    /// </summary>
    public string ForwardingSender(string sender) =>
        Srs is { } srs && sender.Length > 0 && !IsLocal(Address.DomainOf(sender)) ? srs.Forward(sender) : sender;

    /// <summary>Why an address at the SRS domain is refused (forged, expired, malformed), or null when it is not one or is good.</summary>
    public string? SrsRefusal(string address) =>
        Srs is { } srs && srs.IsRewritten(address) && srs.Reverse(address, out var why) is null ? why : null;

    /// <summary>
    /// Follows aliases to final recipients (remote addresses are final); null when the address, or a
    /// local address an alias names, is unknown, or the aliases loop. A good SRS address is an alias of
    /// the sender it stands for.
    /// </summary>
    public AliasExpansion? Expand(string address)
    {
        List<string> recipients = [], aliases = [], path = [];
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        return Walk(address) ? new AliasExpansion(recipients, aliases) : null;

        bool Walk(string a)
        {
            if (IsLocal(Address.DomainOf(a)) && LookUp(a) is { Mailbox: null } found)
            {
                if (found.AliasTargets is not { } targets || path.Count >= MaxAliasDepth || path.Contains(a, StringComparer.OrdinalIgnoreCase)) return false;
                // An alias reached twice by different paths is expanded once; reached again on its own path, it loops.
                if (!seen.Add(a)) return true;
                aliases.Add(a);
                path.Add(a);
                var ok = targets.All(Walk);
                path.RemoveAt(path.Count - 1);
                return ok;
            }
            // A local mailbox or a remote address: final.
            if (seen.Add(a)) recipients.Add(a);
            return true;
        }
    }

    private MailboxLookup LookUp(string address) =>
        Srs is { } srs && srs.IsRewritten(address)
            ? srs.Reverse(address, out _) is { } original ? new(null, [original]) : default
            : Find(address);

    private MailboxLookup Exact(string local, string domain, string? extension)
    {
        var key = local + "@" + domain;
        if (_users.TryGetValue(key, out var quota)) return MailboxAt(local, domain, extension, quota) is { } box ? new(box, null) : default;
        if (_aliases.TryGetValue(key, out var targets)) return new(null, targets);
        return default;
    }

    /// <summary>Null when the user's local part cannot name a Maildir (see <see cref="MaildirName"/>).</summary>
    private Mailbox? MailboxAt(string user, string domain, string? extension, long? quota) =>
        MaildirName(user) is not { } name ? null
        : new(_directories.TryGetValue(domain, out var dir) ? $"{dir}/{name}" : name, extension is not null && IsFolderName(extension) ? extension : null, quota);

    /// <summary>A directory name from the configuration (Mailboxes.Domains): one path component, not empty, no slash or NUL, not hidden.</summary>
    public static bool IsDirectoryName(string s) => s.Length > 0 && s[0] != '.' && s.IndexOfAny(['/', '\0']) < 0;

    /// <summary>NAME_MAX on Linux file systems: one path component is at most this many bytes.</summary>
    private const int MaxNameBytes = 255;

    /// <summary>
    /// The Maildir directory a local part's content (lower-cased) is delivered to, injective and safe: the
    /// content itself where it is letters, digits (any script), "!#$&amp;'*+-=?^_`{|}~" and dots that neither lead
    /// nor follow a dot; every other character as "%XX" per UTF-8 byte, '%' included ("a b" → a%20b,
    /// "a/../b" → a%2F.%2E%2Fb, ".x" → %2Ex). So no name holds '/', NUL, a quote, a backslash or a control
    /// character, none starts with a dot or holds "..", and two local parts never share one. Null for
    /// nothing to name ("") or a name past NAME_MAX: such a local part has no Maildir.
    /// </summary>
    public static string? MaildirName(string content)
    {
        if (content.Length == 0) return null;
        // The common case, a plain ASCII name, is itself: no copy on the RCPT and delivery paths.
        var plain = true;
        for (int i = 0; plain && i < content.Length; i++)
            plain = content[i] < 0x80 && IsNameRune(new System.Text.Rune(content[i]), afterDotOrStart: i == 0 || content[i - 1] == '.');
        if (plain) return content.Length > MaxNameBytes ? null : content;
        var name = new System.Text.StringBuilder(content.Length);
        Span<char> utf16 = stackalloc char[2];
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in content.EnumerateRunes())
        {
            if (IsNameRune(rune, afterDotOrStart: name.Length == 0 || name[^1] == '.'))
            {
                name.Append(utf16[..rune.EncodeToUtf16(utf16)]);
                continue;
            }
            foreach (var b in utf8[..rune.EncodeToUtf8(utf8)]) name.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
        }
        var escaped = name.ToString();
        return System.Text.Encoding.UTF8.GetByteCount(escaped) > MaxNameBytes ? null : escaped;
    }

    private static bool IsNameRune(System.Text.Rune r, bool afterDotOrStart) =>
        r.IsAscii ? char.IsAsciiLetterOrDigit((char)r.Value) || "!#$&'*+-=?^_`{|}~".Contains((char)r.Value, StringComparison.Ordinal) || (r.Value == '.' && !afterDotOrStart)
        : System.Text.Rune.IsLetterOrDigit(r);

    /// <summary>A Maildir++ folder name (dots nest folders) made only of name characters: no empty level, so never "." or "..".</summary>
    private static bool IsFolderName(string s) => MaildirName(s) == s && !s.EndsWith('.');

    private static string Ascii(string domain) => Address.AsciiDomain(domain) ?? domain.ToLowerInvariant();

    /// <summary>
    /// "Alice@Example.ORG" → "alice@example.org", "\"Bob\"@x" → "bob@x": local parts are compared by content
    /// without case, as every MTA in practice does; the last '@' still divides a key (domains have none).
    /// </summary>
    private static string Key(string address) => LookupLocal(address) + "@" + Ascii(Address.DomainOf(address));

    /// <summary>The local part as lookups see it: its content ("Alice"@d, alice@d alike), without case.</summary>
    private static string LookupLocal(string address) => LocalPart.Content(Address.LocalPartOf(address)).ToLowerInvariant();

    /// <summary>Whether the whole local part of <paramref name="address"/> can name a Maildir (<see cref="MaildirName"/>).</summary>
    public static bool CanNameMaildir(string address) => MaildirName(LookupLocal(address)) is not null;
}
