// A self-signed server certificate made on the spot, for TLS peers in tests: valid for its name, but
// no trust store knows its issuer, so a client that verifies refuses it.
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Sluice.Testing;

public static class SelfSignedCertificate
{
    public static X509Certificate2 For(string hostname)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={hostname}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(hostname);
        request.CertificateExtensions.Add(names.Build());
        using var made = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        // Through PKCS#12 so the private key is usable by SslStream on every platform.
        return X509CertificateLoader.LoadPkcs12(made.Export(X509ContentType.Pfx), null);
    }
}
