// The certificate STARTTLS and port 465 present: the operator's PEM pair, else a self-signed one
// made once under DataDir/tls, so TLS (and with it AUTH) works from the first start.
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Core.IO;

namespace Sluice.Receive.Tls;

public static class ServerCertificate
{
    public const string CertificateFile = "cert.pem";
    public const string KeyFile = "key.pem";

    private static readonly TimeSpan Lifetime = TimeSpan.FromDays(3650);

    /// <summary>
    /// The certificate with the intermediates that follow it in Smtp:TlsCertificate, so clients are
    /// sent the whole chain (RFC 8446 §4.4.2), built once for every handshake.
    /// </summary>
    public static SslStreamCertificateContext LoadContext(SluiceOptions options, Action<string> log)
    {
        var leaf = LoadOrCreate(options, log);
        var chain = new X509Certificate2Collection();
        if (options.Smtp.TlsCertificate is { } path) chain.ImportFromPemFile(Path.GetFullPath(path));
        var intermediates = new X509Certificate2Collection(chain.Where(c => c.Thumbprint != leaf.Thumbprint).ToArray());
        return SslStreamCertificateContext.Create(leaf, intermediates, offline: true);
    }

    public static X509Certificate2 LoadOrCreate(SluiceOptions options, Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        if (options.Smtp.TlsCertificate is not null || options.Smtp.TlsKey is not null)
            return LoadConfigured(options.Smtp.TlsCertificate, options.Smtp.TlsKey);

        var dir = options.TlsDirectory;
        var cert = Path.Combine(dir, CertificateFile);
        var key = Path.Combine(dir, KeyFile);
        if (!File.Exists(cert) || !File.Exists(key))
        {
            CreateSelfSigned(options.Hostname, dir, cert, key);
            log($"tls: made a self-signed certificate for {options.Hostname} in {dir}");
        }
        return Load(cert, key, "DataDir", "DataDir",
            $" (the pair Sluice uses when Smtp:TlsCertificate is unset; remove both files to have a new self-signed pair made)");
    }

    private static X509Certificate2 LoadConfigured(string? cert, string? key)
    {
        if (string.IsNullOrWhiteSpace(cert)) throw new ConfigurationException("key 'Smtp:TlsCertificate': must name a PEM file when Smtp:TlsKey is set");
        if (string.IsNullOrWhiteSpace(key)) throw new ConfigurationException("key 'Smtp:TlsKey': must name a PEM file when Smtp:TlsCertificate is set");
        return Load(Path.GetFullPath(cert), Path.GetFullPath(key), "Smtp:TlsCertificate", "Smtp:TlsKey", "");
    }

    /// <summary>Loads a PEM certificate and private key, blaming the file at fault in a ConfigurationException.</summary>
    private static X509Certificate2 Load(string certPath, string keyPath, string certKey, string keyKey, string hint)
    {
        var certPem = Read(certPath, certKey, hint);
        var keyPem = Read(keyPath, keyKey, hint);
        try
        {
            // The first CERTIFICATE block is the server's own (RFC 7468 §5); what follows is its chain.
            using var alone = X509Certificate2.CreateFromPem(certPem);
        }
        catch (CryptographicException e)
        {
            throw Fail(certKey, certPath, $"no usable PEM certificate: {e.Message}", hint);
        }
        try
        {
            return X509Certificate2.CreateFromPem(certPem, keyPem);
        }
        catch (CryptographicException e)
        {
            throw Fail(keyKey, keyPath, $"no usable PEM private key: {e.Message}", hint);
        }
        catch (ArgumentException)
        {
            throw Fail(keyKey, keyPath, $"the private key is not the one matching the certificate in {certPath}", hint);
        }
    }

    private static string Read(string path, string key, string hint)
    {
        try
        {
            return File.ReadAllText(path, Encoding.ASCII);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Fail(key, path, $"cannot read the file: {e.Message}", hint);
        }
    }

    private static ConfigurationException Fail(string key, string path, string reason, string hint) =>
        new($"key '{key}': {path}: {reason}{hint}");

    private static void CreateSelfSigned(string hostname, string dir, string certPath, string keyPath)
    {
        if (!Directory.Exists(dir))
        {
            PrivateFiles.CreateDirectory(dir);
            DurableFile.SyncDirectory(Path.GetDirectoryName(dir)!);
        }
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={hostname}"), ecdsa, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(hostname);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        // RFC 5280 §4.2.1.12: id-kp-serverAuth.
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var now = DateTimeOffset.UtcNow;
        using var cert = request.CreateSelfSigned(now.AddDays(-1), now.Add(Lifetime));

        // A lone cert.pem goes first and the new one comes last: a crash in between leaves cert.pem
        // missing, so the next start makes a fresh pair rather than loading a mismatched one.
        File.Delete(certPath);
        AtomicFile.Write(keyPath, Encoding.ASCII.GetBytes(ecdsa.ExportPkcs8PrivateKeyPem() + "\n"), AtomicFile.OwnerOnly, syncDirectory: false);
        AtomicFile.Write(certPath, Encoding.ASCII.GetBytes(cert.ExportCertificatePem() + "\n"), AtomicFile.Readable);
    }
}
