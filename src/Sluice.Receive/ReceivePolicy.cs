// Who may send what to whom: the relay decision and the limits, taken from Smtp options once.
using System.Globalization;
using System.Net;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;

namespace Sluice.Receive;

public sealed class ReceivePolicy(SluiceOptions options, TimeProvider? time = null)
{
    private readonly IPNetwork[] _relayNetworks = [.. options.Smtp.RelayNetworks.Select(n => IPNetwork.Parse(n))];
    private readonly HashSet<string> _localDomains = AsciiSet(options.Smtp.LocalDomains);
    private readonly HashSet<string> _relayDomains = AsciiSet(options.Smtp.RelayDomains);

    public string Hostname { get; } = options.Hostname;
    public long MaxMessageBytes { get; } = options.Smtp.MaxMessageBytes;
    public int MaxRecipients { get; } = options.Smtp.MaxRecipients;
    public string PostmasterDomain { get; } = options.Smtp.LocalDomains.FirstOrDefault() ?? options.Hostname;
    public int MaxErrors { get; } = options.Smtp.MaxErrors;
    public TimeSpan CommandTimeout { get; } = options.Smtp.CommandTimeout;
    public TimeSpan StressCommandTimeout { get; } = options.Smtp.StressCommandTimeout;
    public SpoolSpace Spool { get; } = new(options.QueueBase, options.Queue.MinFreeBytes.Bytes, time ?? TimeProvider.System);

    public bool IsRelayClient(IPAddress? client)
    {
        if (client is null) return false;
        if (client.IsIPv4MappedToIPv6) client = client.MapToIPv4();
        return _relayNetworks.Any(n => n.Contains(client));
    }

    /// <summary>
    /// Local domains and those we relay or back up for: mail to them is taken from anyone. Compared in
    /// A-label form, so an IDN domain matches however it is spelled (RFC 5890).
    /// </summary>
    public bool AcceptsFromAnyone(string domain) => Address.AsciiDomain(domain) is { } d && (_localDomains.Contains(d) || _relayDomains.Contains(d));

    private static HashSet<string> AsciiSet(IEnumerable<string> domains) =>
        new(domains.Select(d => Address.AsciiDomain(d) ?? d.ToLowerInvariant()), StringComparer.OrdinalIgnoreCase);
}
