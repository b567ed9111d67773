// Who may send what to whom: the relay decision and the limits, taken from Smtp options once.
using System.Globalization;
using System.Net;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Core.Mailboxes;

namespace Sluice.Receive;

/// <param name="loginRates">The counts of a policy this one replaces on reload, so a reload does not reset them.</param>
public sealed class ReceivePolicy(SluiceOptions options, TimeProvider? time = null, LoginRate? loginRates = null)
{
    private readonly IPNetwork[] _relayNetworks = [.. options.Smtp.RelayNetworks.Select(n => IPNetwork.Parse(n))];
    private readonly string _mailboxRoot = options.MailboxRoot;
    private readonly HashSet<string> _relayDomains = AsciiSet(options.Smtp.RelayDomains);

    public MailboxMap Mailboxes { get; } = new(options, time);
    public string Hostname { get; } = options.Hostname;
    public long MaxMessageBytes { get; } = options.Smtp.MaxMessageBytes;
    public int MaxRecipients { get; } = options.Smtp.MaxRecipients;
    public string PostmasterDomain { get; } = options.Smtp.LocalDomains.FirstOrDefault() ?? options.Hostname;
    public int MaxErrors { get; } = options.Smtp.MaxErrors;
    public TimeSpan CommandTimeout { get; } = options.Smtp.CommandTimeout;
    public TimeSpan StressCommandTimeout { get; } = options.Smtp.StressCommandTimeout;
    public SenderLoginMap SenderLogins { get; } = new(options.Smtp.SenderLogins);
    public int LoginRatePerHour { get; } = options.Smtp.LoginRatePerHour;
    public LoginRate LoginRates { get; } = loginRates ?? new(time ?? TimeProvider.System);
    public bool HideAuthenticatedUser { get; } = options.Smtp.HideAuthenticatedUser;
    public SpoolSpace Spool { get; } = new(options.QueueBase, options.Queue.MinFreeBytes.Bytes, time ?? TimeProvider.System);

    public bool IsRelayClient(IPAddress? client)
    {
        if (client is null) return false;
        if (client.IsIPv4MappedToIPv6) client = client.MapToIPv4();
        return _relayNetworks.Any(n => n.Contains(client));
    }

    /// <summary>
    /// Local domains (those the Mailboxes section names too) and those we relay or back up for: mail to them
    /// is taken from anyone. Compared in A-label form, so an IDN domain matches however it is spelled (RFC 5890).
    /// </summary>
    public bool AcceptsFromAnyone(string domain) => Address.AsciiDomain(domain) is { } d && (Mailboxes.IsLocal(d) || _relayDomains.Contains(d));

    /// <summary>
    /// RCPT to a local domain: null when accepted (with its expansion when it is an alias), else the reply.
    /// Unknown users are refused now, never accepted and bounced later (no backscatter); a mailbox whose
    /// maildirsize says it is full, or would be with the declared SIZE, is deferred (RFC 3463 4.2.2).
    /// </summary>
    public string? CheckLocalRecipient(string rcpt, long declaredSize, out AliasExpansion? alias)
    {
        alias = null;
        if (!Mailboxes.IsLocal(Address.DomainOf(rcpt))) return null;
        // A bounce to an SRS address we never made, or made too long ago: refused, not relayed (no backscatter by proxy).
        if (Mailboxes.SrsRefusal(rcpt) is { } forged) return $"550 5.7.1 <{rcpt}>: Recipient address rejected: {forged}";
        if (Mailboxes.Expand(rcpt) is not { } expansion)
        {
            // Valid syntax that no Maildir can be named for ("", or past NAME_MAX once encoded): RFC 3463 5.1.3, not an unknown user.
            return !MailboxMap.CanNameMaildir(rcpt)
                ? $"553 5.1.3 <{rcpt}>: Recipient address rejected: this local part cannot name a mailbox here"
                : $"550 5.1.1 <{rcpt}>: Recipient address rejected: no such user here";
        }
        if (expansion.Aliases.Count > 0)
        {
            alias = expansion;
            return null;
        }
        if (Mailboxes.Find(rcpt).Mailbox is { QuotaBytes: { } quota } box
            && MaildirSize.ReadUsage(Path.Combine(_mailboxRoot, box.Directory)) is { } used && (used >= quota || used + declaredSize > quota))
            return $"452 4.2.2 <{rcpt}>: Mailbox full";
        return null;
    }

    private static HashSet<string> AsciiSet(IEnumerable<string> domains) =>
        new(domains.Select(d => Address.AsciiDomain(d) ?? d.ToLowerInvariant()), StringComparer.OrdinalIgnoreCase);
}
