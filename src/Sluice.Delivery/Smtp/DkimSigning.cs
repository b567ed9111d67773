// Outbound DKIM signing (RFC 6376) per sender domain, the From: header's (the one DMARC aligns with),
// with MimeKit's DkimSigner. The DKIM-Signature field is put in front of the spooled bytes, which
// go on unchanged. Signing happens as a delivery starts, and is deterministic per message: t= is the
// message's Date: (not the clock) and RSA PKCS#1 v1.5 has no randomness, so every attempt and every
// destination of a message carries the very same signature, as if it had been signed once at queue time.
// A message MimeKit cannot parse goes out unsigned rather than waiting until it expires.
using MimeKit;
using MimeKit.Cryptography;
using Org.BouncyCastle.Crypto;
using Sluice.Core.Configuration;

namespace Sluice.Delivery.Smtp;

public sealed class DkimSigning
{
    /// <summary>RFC 6376 §5.4.1: From is required; these others are the ones recommended there that a relay sees.</summary>
    private static readonly HeaderId[] SignedHeaders =
    [
        HeaderId.From, HeaderId.Sender, HeaderId.ReplyTo, HeaderId.Subject, HeaderId.Date, HeaderId.MessageId, HeaderId.To, HeaderId.Cc,
        HeaderId.MimeVersion, HeaderId.ContentType, HeaderId.ContentTransferEncoding, HeaderId.InReplyTo, HeaderId.References,
    ];

    private static readonly FormatOptions Wire = new() { NewLineFormat = NewLineFormat.Dos };

    private readonly Dictionary<string, (string Selector, AsymmetricKeyParameter Key)> _keys = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Loads each key now, so a bad one stops the start (exit 78) rather than the first delivery.</summary>
    public DkimSigning(IReadOnlyDictionary<string, DkimKeyOptions> keys)
    {
        foreach (var (domain, key) in keys)
        {
            try
            {
                _keys[domain] = (key.Selector, DatedDkimSigner.LoadKey(key.KeyFile, domain, key.Selector));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or ArgumentException)
            {
                throw new ConfigurationException($"key 'Delivery:Dkim:{domain}:KeyFile': \"{key.KeyFile}\" is not a readable PEM private key: {e.Message}");
            }
        }
    }

    /// <summary>
    /// The message with a DKIM-Signature in front when its From: domain has a key, else the message itself.
    /// Called per delivery attempt: with no keys configured it costs nothing; otherwise it parses the header section.
    /// </summary>
    public ReadOnlyMemory<byte> Sign(ReadOnlyMemory<byte> message)
    {
        if (_keys.Count == 0) return message;
        MimeMessage parsed;
        string? domain;
        (string Selector, AsymmetricKeyParameter Key) key;
        try
        {
            // The header section first: most mail relayed is not ours to sign, and its body need not be parsed.
            var headers = HeaderList.Load(MessageBytes.OpenRead(message));
            domain = InternetAddressList.TryParse(headers[HeaderId.From] ?? "", out var from) ? from.Mailboxes.FirstOrDefault()?.Domain : null;
            if (domain is null || !_keys.TryGetValue(domain, out key)) return message;
            parsed = MimeMessage.Load(MessageBytes.OpenRead(message));
        }
        catch (FormatException)
        {
            return message; // not a message MimeKit can read: relayed as it is, unsigned, rather than held forever
        }
        var signer = new DatedDkimSigner(key.Key, domain, key.Selector, parsed.Date)
        {
            HeaderCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
            BodyCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
        };
        signer.Sign(Wire, parsed, SignedHeaders);
        // MimeKit folds the field it adds with FormatOptions.Default, the platform's newline (LF here), whatever
        // options Sign was given. Each bare LF becomes CRLF (RFC 5322 §2.2.3, RFC 5321 §2.3.8); the folds stay where
        // they were signed, so nothing depends on MimeKit folding the same way twice.
        var signature = parsed.Headers[parsed.Headers.IndexOf(HeaderId.DkimSignature)];
        var field = Crlf(System.Text.Encoding.ASCII.GetBytes(signature.Field + ":").Concat(signature.RawValue));
        var signed = new byte[field.Length + message.Length];
        field.CopyTo(signed, 0);
        message.Span.CopyTo(signed.AsSpan(field.Length));
        return signed;
    }

    private static byte[] Crlf(IEnumerable<byte> field)
    {
        var crlf = new List<byte>(256);
        foreach (var b in field)
        {
            if (b == (byte)'\n' && (crlf.Count == 0 || crlf[^1] != (byte)'\r')) crlf.Add((byte)'\r');
            crlf.Add(b);
        }
        return [.. crlf];
    }

    /// <summary>t= from the message's Date: rather than the clock, so a message's signature is the same on every attempt.</summary>
    private sealed class DatedDkimSigner : DkimSigner
    {
        private readonly long _timestamp;

        public DatedDkimSigner(AsymmetricKeyParameter key, string domain, string selector, DateTimeOffset date)
            : base(key, domain, selector, DkimSignatureAlgorithm.RsaSha256) => _timestamp = Math.Max(0, date.ToUnixTimeSeconds());

        private DatedDkimSigner(string keyFile, string domain, string selector) : base(keyFile, domain, selector, DkimSignatureAlgorithm.RsaSha256)
        {
        }

        /// <summary>MimeKit reads the PEM file (PKCS#1 or PKCS#8); the key is kept, the file is not read again.</summary>
        public static AsymmetricKeyParameter LoadKey(string keyFile, string domain, string selector) => new DatedDkimSigner(keyFile, domain, selector).PrivateKey;

        protected override long GetTimestamp() => _timestamp;
    }
}
