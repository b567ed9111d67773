// MAIL and RCPT: the envelope, its ESMTP parameters (SIZE, BODY, SMTPUTF8, RFC 3461 DSN, AUTH)
// and the relay decision. Nothing that could carry CR, LF or NUL gets this far (see the line reader).
using System.Net;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;

namespace Sluice.Receive;

public sealed partial class SmtpSession
{
    // §4.5.3.1.3's path limit bounds the address; the 64-octet local part of §4.5.3.1.1 is not enforced, as Postfix
    // does not: SRS forwarders (SRS0=hash=tt=domain=local@…) routinely exceed it, and §4.5.3.1 asks for no limits where possible.
    private const int MaxPath = 256, MaxDomain = 255;
    /// <summary>RFC 3461 §4.4: ENVID is at most 100 characters.</summary>
    private const int MaxEnvelopeId = 100;
    private const int MaxRecipientOvershoot = 1000;

    private string? _sender;
    private readonly List<string> _recipients = [];
    private readonly HashSet<string> _recipientSet = new(StringComparer.OrdinalIgnoreCase);
    private List<RecipientDsn>? _dsn;
    private DsnReturn _return;
    private string? _envelopeId;
    private bool _smtpUtf8, _eightBit;
    /// <summary>RFC 1870 SIZE as declared at MAIL (0 when not), weighed against a recipient's quota at RCPT.</summary>
    private long _declaredSize;

    private void Mail(string arg)
    {
        if (_helo is null) { Error("503 5.5.1 Error: send HELO/EHLO first"); return; }
        if (_sender is not null) { Error("503 5.5.1 Error: nested MAIL command"); return; }
        if (_context.Role == SmtpRole.Submission && _transport.Tls is null) { Error("530 5.7.0 Must issue a STARTTLS command first"); return; }
        if (_context.Role != SmtpRole.Smtp && _authUser is null) { Error("530 5.7.0 Authentication required"); return; }
        if (!TryParsePath(arg, "FROM:", out var sender, out var parameters, out var problem)) { Error(problem); return; }
        long size = 0;
        bool utf8 = false, eightBit = false;
        var ret = DsnReturn.Unspecified;
        string? envid = null;
        if (!_esmtp && parameters.Count > 0) { Error($"555 5.5.4 MAIL parameters need EHLO, not HELO"); return; }
        if (Repeated(parameters) is { } repeated) { Error($"501 5.5.4 Repeated MAIL parameter {Quote(repeated)}"); return; }
        foreach (var (key, value) in parameters)
        {
            switch (key)
            {
                case "SIZE" when long.TryParse(value, System.Globalization.NumberStyles.None, null, out size):
                    if (size > _policy.MaxMessageBytes) { Error($"552 5.3.4 Message size exceeds fixed limit of {_policy.MaxMessageBytes} bytes"); return; }
                    break;
                case "BODY" when value is "7BIT" or "8BITMIME":
                    eightBit = value == "8BITMIME";
                    break;
                case "SMTPUTF8" when value is null:
                    utf8 = true;
                    break;
                case "RET" when value is "FULL" or "HDRS":
                    ret = value == "FULL" ? DsnReturn.Full : DsnReturn.Headers;
                    break;
                case "ENVID" when XText.TryDecode(value, out envid) && envid.Length <= MaxEnvelopeId && envid.All(c => c is > ' ' and <= '~'):
                    break;
                case "AUTH" when value is not null && XText.TryDecode(value, out _):
                    // RFC 4954 §5: accepted; the identity we log and trace is the session's own AUTH.
                    break;
                case "SIZE" or "BODY" or "SMTPUTF8" or "RET" or "ENVID" or "AUTH":
                    Error($"501 5.5.4 Bad {key} parameter");
                    return;
                default:
                    Error($"555 5.5.4 Unsupported MAIL parameter {Quote(key)}");
                    return;
            }
        }
        if (sender.Length > 0 && !IsValidMailbox(sender, utf8, out sender, out problem)) { Error(problem.Length > 0 && problem[0] == '5' ? problem : $"553 5.1.7 Bad sender address syntax: {problem}"); return; }
        if (_authUser is not null && !LoginMaySend(sender)) return;
        if (!_policy.Spool.HasRoomFor(size)) { Reply("452 4.3.1 Insufficient system storage"); return; }
        _sender = sender;
        _smtpUtf8 = utf8;
        _eightBit = eightBit;
        _return = ret;
        _envelopeId = envid;
        _declaredSize = size;
        Reply("250 2.1.0 Ok");
    }

    private void Rcpt(string arg)
    {
        if (_sender is null) { Error("503 5.5.1 Error: need MAIL command"); return; }
        if (!TryParsePath(arg, "TO:", out var rcpt, out var parameters, out var problem)) { Error(problem); return; }
        var dsn = default(RecipientDsn);
        if (!_esmtp && parameters.Count > 0) { Error($"555 5.5.4 RCPT parameters need EHLO, not HELO"); return; }
        if (Repeated(parameters) is { } repeated) { Error($"501 5.5.4 Repeated RCPT parameter {Quote(repeated)}"); return; }
        foreach (var (key, value) in parameters)
        {
            if (key == "NOTIFY" && TryParseNotify(value, out var notify)) dsn = dsn with { Notify = notify };
            else if (key == "ORCPT" && TryParseOriginalRecipient(value, out var orcpt)) dsn = dsn with { OriginalRecipient = orcpt };
            else if (key is "NOTIFY" or "ORCPT") { Error($"501 5.5.4 Bad {key} parameter"); return; }
            else { Error($"555 5.5.4 Unsupported RCPT parameter {Quote(key)}"); return; }
        }
        // RFC 5321 §4.5.1: the bare "Postmaster" must be accepted.
        if (rcpt.Equals("postmaster", StringComparison.OrdinalIgnoreCase)) rcpt = $"postmaster@{_policy.PostmasterDomain}";
        if (!IsValidMailbox(rcpt, _smtpUtf8, out rcpt, out problem)) { Error(problem.Length > 0 && problem[0] == '5' ? problem : $"501 5.1.3 Bad recipient address syntax: {problem}"); return; }
        if (!MayRelayTo(rcpt)) { Error($"554 5.7.1 <{rcpt}>: Relay access denied"); return; }
        if (_recipients.Count >= _policy.MaxRecipients)
        {
            // Postfix's smtpd_recipient_overshoot_limit: only past this many extra recipients do they count as errors.
            if (++_overshoot > MaxRecipientOvershoot) Error("452 4.5.3 Error: too many recipients");
            else Reply("452 4.5.3 Error: too many recipients");
            return;
        }
        // The same recipient twice is delivered once (Postfix's cleanup does the same).
        if (_recipientSet.Contains(rcpt)) { Reply("250 2.1.5 Ok"); return; }
        if (_policy.CheckLocalRecipient(rcpt, _declaredSize, out var alias) is { } refusal)
        {
            if (refusal[0] == '5') Error(refusal);
            else Reply(refusal);
            return;
        }
        if (alias is not null) (_aliases ??= new(StringComparer.OrdinalIgnoreCase))[rcpt] = alias;
        _recipientSet.Add(rcpt);
        if (dsn != default && _dsn is null) _dsn = [.. Enumerable.Repeat(default(RecipientDsn), _recipients.Count)];
        _dsn?.Add(dsn);
        _recipients.Add(rcpt);
        Reply("250 2.1.5 Ok");
    }

    private int _overshoot;

    /// <summary>
    /// Relay policy: our own and relay domains from anyone, others only from RelayNetworks or an AUTH
    /// session. Percent hack, bang paths and quoted "@" name another destination inside a local part,
    /// so from anyone else they are refused too; an address literal is never a domain we accept for.
    /// </summary>
    private bool MayRelayTo(string rcpt)
    {
        if (_authUser is not null || _policy.IsRelayClient(_remote?.Address)) return true;
        var local = Address.LocalPartOf(rcpt);
        return _policy.AcceptsFromAnyone(Address.DomainOf(rcpt)) && local.IndexOfAny(['%', '!', '@']) < 0;
    }

    private Envelope BuildEnvelope(IReadOnlyList<string> recipients, IReadOnlyList<RecipientDsn>? dsn) => new(_sender!, recipients)
    {
        Dsn = dsn,
        Return = _return,
        EnvelopeId = _envelopeId,
        SmtpUtf8 = _smtpUtf8,
        EightBitMime = _eightBit,
        AuthenticatedAs = _authUser,
    };

    private void ResetTransaction()
    {
        _sender = null;
        _recipients.Clear();
        _recipientSet.Clear();
        _dsn = null;
        _return = DsnReturn.Unspecified;
        _envelopeId = null;
        _smtpUtf8 = _eightBit = false;
        _declaredSize = 0;
        _aliases = null;
        _overshoot = 0;
        ResetMessage();
    }

    /// <summary>The first parameter given twice, if any; a handful at most, so no set is needed.</summary>
    private static string? Repeated(List<(string Key, string? Value)> parameters)
    {
        for (int i = 1; i < parameters.Count; i++)
            for (int j = 0; j < i; j++)
                if (parameters[i].Key == parameters[j].Key) return parameters[i].Key;
        return null;
    }

    /// <summary>Parses "FROM:&lt;path&gt; params" or "TO:&lt;path&gt; params"; parameter keys come back upper-cased.</summary>
    internal static bool TryParsePath(string arg, string keyword, out string address, out List<(string Key, string? Value)> parameters, out string problem)
    {
        address = "";
        parameters = [];
        problem = $"501 5.5.4 Syntax: {(keyword == "FROM:" ? "MAIL FROM:<address>" : "RCPT TO:<address>")}";
        if (!arg.StartsWith(keyword, StringComparison.OrdinalIgnoreCase)) return false;
        var rest = arg[keyword.Length..].TrimStart(' ');
        if (!rest.StartsWith('<')) return false;
        var close = ClosingBracket(rest);
        if (close < 0) return false;
        address = rest[1..close];
        // RFC 5321 §4.1.1.3: a source route is accepted and ignored; only the mailbox after it counts.
        if (address.StartsWith('@'))
        {
            var colon = address.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0) return false;
            address = address[(colon + 1)..];
        }
        foreach (var p in rest[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = p.IndexOf('=');
            parameters.Add(eq < 0 ? (p.ToUpperInvariant(), null) : (p[..eq].ToUpperInvariant(), p[(eq + 1)..]));
        }
        return true;
    }

    /// <summary>
    /// The '&gt;' that ends the path opened at rest[0], or -1. A local part that opens with '"' is a Quoted-string
    /// up to its closing '"' (quoted-pairs skipped), so a '&gt;' inside it ("a&gt;b"@d) is not the end.
    /// </summary>
    private static int ClosingBracket(ReadOnlySpan<char> rest)
    {
        var first = rest.IndexOf('>');
        if (first < 0) return -1;
        // RFC 5321 §4.1.2 Path = "<" [ A-d-l ":" ] Mailbox ">": an A-d-l holds neither '"' nor '>'.
        var i = rest[1] == '@' && rest[..first].IndexOf(':') is > 0 and var colon ? colon + 1 : 1;
        if (i >= rest.Length || rest[i] != '"') return first;
        for (i++; i < rest.Length && rest[i] != '"'; i++)
            if (rest[i] == '\\') i++;
        if (i >= rest.Length) return -1;
        var close = rest[i..].IndexOf('>');
        return close < 0 ? -1 : i + close;
    }

    /// <summary>
    /// RFC 5321 §4.1.2 mailbox within the §4.5.3.1.3 path limit; UTF-8 only under SMTPUTF8 (RFC 6531 §3.3).
    /// <paramref name="canonical"/> is the address as the envelope keeps it: its local part in LocalPart's canonical form.
    /// </summary>
    internal static bool IsValidMailbox(string address, bool utf8, out string canonical, out string problem)
    {
        problem = "";
        canonical = address;
        var at = address.LastIndexOf('@');
        if (at <= 0 || at == address.Length - 1) { problem = "must be local-part@domain"; return false; }
        if (!utf8 && !address.All(char.IsAscii)) { problem = "553 5.6.7 Non-ASCII address requires SMTPUTF8 (RFC 6531)"; return false; }
        // The path is the address in its angle brackets.
        if (System.Text.Encoding.UTF8.GetByteCount(address) + 2 > MaxPath) { problem = $"path longer than {MaxPath} octets"; return false; }
        var domain = address[(at + 1)..];
        if (address.Any(char.IsControl) || domain.Any(c => c is ' ' or '<' or '>')) { problem = "contains a space, bracket or control character"; return false; }
        if (!LocalPart.TryParse(address.AsSpan(0, at), out var local))
        {
            problem = $"\"{Quote(address[..at])}\" is neither a dot-string nor a quoted string (RFC 5321 §4.1.2)";
            return false;
        }
        canonical = $"{local}@{domain}";
        if (domain.StartsWith('[') && domain.EndsWith(']'))
        {
            var literal = domain[1..^1];
            if (literal.StartsWith("IPv6:", StringComparison.OrdinalIgnoreCase)) literal = literal[5..];
            if (IPAddress.TryParse(literal, out _)) return true;
            problem = $"\"{Quote(domain)}\" is not an address literal";
            return false;
        }
        if (Address.AsciiDomain(domain) is not { } ascii || ascii.Length > MaxDomain
            || !Endpoints.TryParseHostPort(ascii + ":1", 1, out _, out _))
        {
            problem = $"\"{Quote(domain)}\" is not a domain";
            return false;
        }
        return true;
    }

    /// <summary>
    /// Client text quoted in a reply: at most 64 characters and no control characters, so the reply
    /// stays one printable line within RFC 5321 §4.5.3.1.5's 512 octets.
    /// </summary>
    private static string Quote(string s)
    {
        var clean = string.Concat(s.Take(64).Select(c => char.IsControl(c) ? '?' : c));
        return s.Length > 64 ? clean + "..." : clean;
    }

    /// <summary>RFC 3461 §4.1: NEVER alone, or any of SUCCESS, FAILURE, DELAY.</summary>
    private static bool TryParseNotify(string? value, out DsnNotify notify)
    {
        notify = DsnNotify.Unspecified;
        if (value is null) return false;
        foreach (var word in value.Split(','))
        {
            notify |= word.ToUpperInvariant() switch
            {
                "NEVER" => DsnNotify.Never,
                "SUCCESS" => DsnNotify.Success,
                "FAILURE" => DsnNotify.Failure,
                "DELAY" => DsnNotify.Delay,
                _ => (DsnNotify)0xFF,
            };
        }
        return notify is not (DsnNotify)0xFF and not DsnNotify.Unspecified
            && ((notify & DsnNotify.Never) == 0 || notify == DsnNotify.Never);
    }

    /// <summary>RFC 3461 §4.2: "addr-type;xtext", kept as "addr-type;address".</summary>
    private static bool TryParseOriginalRecipient(string? value, out string orcpt)
    {
        orcpt = "";
        var semi = value?.IndexOf(';') ?? -1;
        if (semi <= 0) return false;
        var type = value![..semi];
        if (!type.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')) return false;
        if (!XText.TryDecode(value[(semi + 1)..], out var address) || address.Length is 0 or > 500 || address.Any(char.IsControl)) return false;
        orcpt = $"{type};{address}";
        return true;
    }
}
