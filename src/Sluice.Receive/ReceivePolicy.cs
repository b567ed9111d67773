// Who may send what to whom: the relay decision and the limits, taken from Smtp options once.
using System.Net;
using Sluice.Core.Configuration;

namespace Sluice.Receive;

public sealed class ReceivePolicy(SluiceOptions options)
{
    private readonly IPNetwork[] _relayNetworks = [.. options.Smtp.RelayNetworks.Select(n => IPNetwork.Parse(n))];
    private readonly HashSet<string> _localDomains = new(options.Smtp.LocalDomains, StringComparer.OrdinalIgnoreCase);

    public string Hostname { get; } = options.Hostname;
    public long MaxMessageBytes { get; } = options.Smtp.MaxMessageBytes;
    public int MaxRecipients { get; } = options.Smtp.MaxRecipients;
    public string PostmasterDomain { get; } = options.Smtp.LocalDomains.FirstOrDefault() ?? options.Hostname;
    /// <summary>Errors a client may make before it is disconnected (Postfix's smtpd_hard_error_limit).</summary>
    public int MaxErrors { get; } = 10;
    public TimeSpan CommandTimeout { get; } = TimeSpan.FromMinutes(5);

    public bool IsRelayClient(IPAddress? client)
    {
        if (client is null) return false;
        if (client.IsIPv4MappedToIPv6) client = client.MapToIPv4();
        return _relayNetworks.Any(n => n.Contains(client));
    }

    public bool IsLocalDomain(string domain) => _localDomains.Contains(domain);
}
