// qmail's smtproutes: a domain (or "*" for every domain) sent to a fixed host:port, skipping MX.
using Sluice.Core.Configuration;

namespace Sluice.Delivery.Smtp;

public sealed class SmtpRoutes(IReadOnlyDictionary<string, string> routes)
{
    private volatile IReadOnlyDictionary<string, string> _routes = routes;

    /// <summary>The host and port for <paramref name="domain"/>, or null when no route covers it.</summary>
    public (string Host, int Port)? Find(string domain)
    {
        var table = _routes;
        for (var d = domain; d.Length > 0;)
        {
            if (table.TryGetValue(d, out var target) && Endpoints.TryParseHostPort(target, 25, out var host, out var port)) return (host, port);
            var dot = d.IndexOf('.', StringComparison.Ordinal);
            d = dot < 0 ? "" : d[(dot + 1)..];
            if (d.Length > 0 && table.TryGetValue("." + d, out target) && Endpoints.TryParseHostPort(target, 25, out host, out port)) return (host, port);
        }
        return table.TryGetValue("*", out var all) && Endpoints.TryParseHostPort(all, 25, out var h, out var p) ? (h, p) : null;
    }

    /// <summary>The route's "host:port" for a routed domain (domains routed alike share it), else the domain itself.</summary>
    public string DestinationOf(string domain) => Find(domain) is { } route ? KeyOf(route) : domain;

    /// <summary>The table in force: a reload puts a new one in its place, never changes one.</summary>
    public IReadOnlyDictionary<string, string> Table => _routes;

    /// <summary>A reloaded configuration's routes: deliveries that start from now on follow them.</summary>
    public void Replace(IReadOnlyDictionary<string, string> reloaded) => _routes = reloaded;

    public static string KeyOf((string Host, int Port) route) => $"{route.Host}:{route.Port}";
}
