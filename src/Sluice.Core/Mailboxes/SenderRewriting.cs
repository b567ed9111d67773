// The Sender Rewriting Scheme (Shevek's SRS paper; libsrs2's "guarded" form) for mail an alias forwards
// to another domain: the envelope sender becomes an address at our SRS domain, so SPF checks at the
// next hop pass, and a bounce to that address leads back to the original sender. Written here because
// no maintained .NET SRS library is served; the wire format follows libsrs2 so either side interoperates:
//   SRS0=HHHH=TT=domain=local@srsdomain           for an ordinary sender local@domain
//   SRS1=HHHH=host==HHHH=TT=domain=local@srsdomain for one already SRS0-rewritten by host
// HHHH: the first 4 base64 characters of HMAC-SHA1(secret, lower-cased fields), so no one without the
// secret can make us relay a "bounce"; TT: the day number mod 1024 in 2 base32 characters, so an
// address stops working after MaxAge days.
using System.Security.Cryptography;
using System.Text;
using Sluice.Core.Mail;

namespace Sluice.Core.Mailboxes;

public sealed class SenderRewriting(string domain, string secret, int maxAgeDays, TimeProvider time)
{
    public const int DefaultMaxAgeDays = 21; // libsrs2's default
    private const int HashChars = 4, TimeSlots = 1024;
    private const string Base32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    private readonly byte[] _key = Encoding.UTF8.GetBytes(secret);

    /// <summary>The domain rewritten senders are at; local to this server.</summary>
    public string Domain { get; } = domain;

    /// <summary>True for an address this scheme may have written: SRS0= or SRS1= at <see cref="Domain"/>.</summary>
    public bool IsRewritten(string address) =>
        Address.DomainOf(address).Equals(Domain, StringComparison.OrdinalIgnoreCase) && Tag(LocalOf(address)) is not null;

    /// <summary>The envelope sender for <paramref name="sender"/>'s mail forwarded elsewhere.</summary>
    public string Forward(string sender)
    {
        var local = LocalOf(sender);
        var host = Address.DomainOf(sender);
        if (Tag(local) == "SRS1")
        {
            // Already forwarded twice or more: keep the first forwarder's host and its SRS0 part, sign them anew.
            var parts = local[5..].Split('=', 3);
            if (parts.Length == 3) return Srs1(parts[1], parts[2].StartsWith('=') ? parts[2][1..] : parts[2]);
        }
        if (Tag(local) == "SRS0") return Srs1(host, local[5..]);
        var stamp = Timestamp(time.GetUtcNow());
        return Address.Of($"SRS0={Hash(stamp, host, local)}={stamp}={host}={local}", Domain);
    }

    /// <summary>The address a rewritten one stands for; null with <paramref name="refusal"/> saying why when it is forged or expired.</summary>
    public string? Reverse(string address, out string refusal)
    {
        refusal = "";
        var local = LocalOf(address);
        switch (Tag(local))
        {
            case "SRS0":
                // HHHH=TT=domain=local: the original local part may itself hold '='.
                var f = local[5..].Split('=', 4);
                if (f.Length < 4 || f[2].Length == 0 || f[3].Length == 0) { refusal = "malformed SRS address"; return null; }
                if (!Matches(f[0], f[1], f[2], f[3])) { refusal = "SRS address with a bad hash (forged)"; return null; }
                if (!Fresh(f[1])) { refusal = "SRS address too old (expired)"; return null; }
                return Address.Of(f[3], f[2]);
            case "SRS1":
                // HHHH=host==rest: back to the first forwarder's SRS0 address, which that forwarder checks.
                var g = local[5..].Split('=', 3);
                if (g.Length < 3 || g[1].Length == 0 || !g[2].StartsWith('=') || g[2].Length == 1) { refusal = "malformed SRS address"; return null; }
                if (!Matches(g[0], g[1], g[2][1..])) { refusal = "SRS address with a bad hash (forged)"; return null; }
                return Address.Of($"SRS0={g[2][1..]}", g[1]);
            default:
                refusal = "not an SRS address";
                return null;
        }
    }

    private string Srs1(string host, string srs0Rest) => Address.Of($"SRS1={Hash(host, srs0Rest)}={host}=={srs0Rest}", Domain);

    /// <summary>
    /// The local part's content: a sender "a b"@x rewrites to "SRS0=HHHH=TT=x=a b"@srsdomain, quoted as a
    /// whole, so the address stays valid on the wire (RFC 5321 §4.1.2) and reverses to the same sender.
    /// </summary>
    private static string LocalOf(string address) => LocalPart.Content(Address.LocalPartOf(address));

    /// <summary>"SRS0" or "SRS1" when the local part starts so (any case, libsrs2 also takes '-' or '+' after it), else null.</summary>
    private static string? Tag(string local)
    {
        if (local.Length <= 5 || local[4] is not ('=' or '-' or '+')) return null;
        var tag = local[..4].ToUpperInvariant();
        return tag is "SRS0" or "SRS1" ? tag : null;
    }

    private string Hash(params string[] fields)
    {
        var data = Encoding.UTF8.GetBytes(string.Concat(fields).ToLowerInvariant());
        return Convert.ToBase64String(HMACSHA1.HashData(_key, data))[..HashChars];
    }

    /// <summary>Relays and mailbox software may change the case of a local part, so the hash is compared without case (as libsrs2 does), in constant time.</summary>
    private bool Matches(string hash, params string[] fields) =>
        hash.Length == HashChars && CryptographicOperations.FixedTimeEquals(
            Encoding.ASCII.GetBytes(hash.ToUpperInvariant()), Encoding.ASCII.GetBytes(Hash(fields).ToUpperInvariant()));

    private static string Timestamp(DateTimeOffset now)
    {
        var day = (int)(now.ToUnixTimeSeconds() / 86400 % TimeSlots);
        return $"{Base32[day >> 5]}{Base32[day & 31]}";
    }

    /// <summary>Made within the last maxAgeDays days; the day number wraps every 1024 days.</summary>
    private bool Fresh(string stamp)
    {
        if (stamp.Length != 2) return false;
        int hi = Base32.IndexOf(char.ToUpperInvariant(stamp[0])), lo = Base32.IndexOf(char.ToUpperInvariant(stamp[1]));
        if (hi < 0 || lo < 0) return false;
        var today = (int)(time.GetUtcNow().ToUnixTimeSeconds() / 86400 % TimeSlots);
        var age = (today - (hi << 5 | lo) + TimeSlots) % TimeSlots;
        return age <= maxAgeDays;
    }
}
