// Parsing of the address forms the config uses: listen endpoints and host:port targets.
using System.Globalization;
using System.Net;

namespace Sluice.Core.Configuration;

public static class Endpoints
{
    /// <summary>"127.0.0.1:2525", "[::1]:2525" or "0.0.0.0:25"; port 0 takes any free port (the log names it).</summary>
    public static bool TryParseListen(string text, out IPEndPoint endpoint) =>
        IPEndPoint.TryParse(text, out endpoint!) && text.Contains(':', StringComparison.Ordinal)
        && (text.StartsWith('[') || text.Count(c => c == ':') == 1);

    /// <summary>An Smtp.Listen entry: "127.0.0.1:587 submission" or "127.0.0.1:587/submission"; no role is smtp.</summary>
    public static bool TryParseSmtpListen(string text, out IPEndPoint endpoint, out SmtpRole role)
    {
        role = SmtpRole.Smtp;
        var cut = text.AsSpan().Trim().IndexOfAny(' ', '/');
        var address = cut < 0 ? text.Trim() : text.Trim()[..cut];
        if (!TryParseListen(address, out endpoint)) return false;
        return cut < 0 || Enum.TryParse(text.Trim()[(cut + 1)..].Trim(), ignoreCase: true, out role) && Enum.IsDefined(role);
    }

    /// <summary>"host:port", "host" (default port), "[::1]:25".</summary>
    public static bool TryParseHostPort(string text, int defaultPort, out string host, out int port)
    {
        host = text.Trim();
        port = defaultPort;
        if (host.StartsWith('['))
        {
            var close = host.IndexOf(']', StringComparison.Ordinal);
            if (close < 0) return false;
            var rest = host[(close + 1)..];
            host = host[1..close];
            if (rest.Length > 0 && (!rest.StartsWith(':') || !TryPort(rest[1..], out port))) return false;
            return IPAddress.TryParse(host, out _);
        }
        var colon = host.LastIndexOf(':');
        if (colon >= 0)
        {
            if (!TryPort(host[(colon + 1)..], out port)) return false;
            host = host[..colon];
        }
        return ConfigValidator.IsHostname(host);
    }

    private static bool TryPort(string s, out int port) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is >= 1 and <= 65535;
}
