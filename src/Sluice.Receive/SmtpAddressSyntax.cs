// Reverse-path and forward-path syntax of RFC 5321 §4.1.2 and the size limits of §4.5.3.1.
namespace Sluice.Receive;

public sealed partial class SmtpSession
{
    private const int MaxLocalPart = 64, MaxDomain = 255;

    /// <summary>Parses "FROM:&lt;path&gt; params" or "TO:&lt;path&gt; params".</summary>
    internal static bool TryParsePath(string arg, string keyword, out string address, out List<string> parameters, out string problem)
    {
        address = "";
        parameters = [];
        problem = $"501 5.5.4 Syntax: {(keyword == "FROM:" ? "MAIL FROM:<address>" : "RCPT TO:<address>")}";
        if (!arg.StartsWith(keyword, StringComparison.OrdinalIgnoreCase)) return false;
        var rest = arg[keyword.Length..].TrimStart(' ');
        if (!rest.StartsWith('<')) return false;
        var close = rest.IndexOf('>', StringComparison.Ordinal);
        if (close < 0) return false;
        address = rest[1..close];
        // RFC 5321 §4.1.1.3: a source route is accepted and ignored.
        if (address.StartsWith('@'))
        {
            var colon = address.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0) return false;
            address = address[(colon + 1)..];
        }
        parameters = [.. rest[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries)];
        return true;
    }

    internal static bool IsValidMailbox(string address, out string problem)
    {
        problem = "";
        var at = address.LastIndexOf('@');
        if (at <= 0 || at == address.Length - 1) { problem = "must be local-part@domain"; return false; }
        if (at > MaxLocalPart) { problem = $"local part longer than {MaxLocalPart} octets"; return false; }
        var domain = address[(at + 1)..];
        if (domain.Length > MaxDomain) { problem = $"domain longer than {MaxDomain} octets"; return false; }
        if (address.Any(c => c is ' ' or '<' or '>' || char.IsControl(c))) { problem = "contains a space, bracket or control character"; return false; }
        if (domain.StartsWith('[') && domain.EndsWith(']')) return true;
        if (!Sluice.Core.Configuration.Endpoints.TryParseHostPort(domain + ":1", 1, out _, out _)) { problem = $"\"{domain}\" is not a domain"; return false; }
        return true;
    }
}
