// Which MX hosts are this server (Postfix's "mail for X loops back to myself"): one named by our
// Hostname, or at an address and port we listen on (a wildcard listener: any address of this host).
// RFC 5321 §5.1: a server that finds itself among a domain's MX hosts must try only the more
// preferred ones; when it is the best, the mail loops.
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Sluice.Delivery.Smtp;

public sealed class OwnAddresses
{
    private readonly string _hostname;
    private readonly HashSet<IPEndPoint> _endpoints;

    /// <param name="listening">The SMTP listeners' endpoints, e.g. 0.0.0.0:25 or 127.0.0.1:2525.</param>
    public OwnAddresses(string hostname, IEnumerable<IPEndPoint> listening)
    {
        _hostname = hostname.TrimEnd('.');
        _endpoints = [.. listening.SelectMany(Expand)];
    }

    public static readonly OwnAddresses None = new("", []);

    /// <summary>The hosts to try: those more preferred than the first that is us, or null when the best is us (a loop).</summary>
    public IReadOnlyList<MxHost>? Before(IReadOnlyList<MxHost> hosts, int port)
    {
        var self = hosts.FirstOrDefault(h => IsUs(h, port));
        if (self is null) return hosts;
        var better = hosts.Where(h => h.Preference < self.Preference).ToList();
        return better.Count > 0 ? better : null;
    }

    private bool IsUs(MxHost host, int port) =>
        (_hostname.Length > 0 && string.Equals(host.Name, _hostname, StringComparison.OrdinalIgnoreCase))
        || host.Addresses.Any(a => _endpoints.Contains(new IPEndPoint(Normal(a), port)));

    /// <summary>A wildcard listener stands for every address of every interface, at its port.</summary>
    private static IEnumerable<IPEndPoint> Expand(IPEndPoint listener)
    {
        if (!listener.Address.Equals(IPAddress.Any) && !listener.Address.Equals(IPAddress.IPv6Any)) return [new IPEndPoint(Normal(listener.Address), listener.Port)];
        return NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(i => i.GetIPProperties().UnicastAddresses)
            .Select(u => u.Address)
            .Where(a => listener.Address.AddressFamily == AddressFamily.InterNetworkV6 || a.AddressFamily == AddressFamily.InterNetwork)
            .Select(a => new IPEndPoint(Normal(a), listener.Port));
    }

    private static IPAddress Normal(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
