// The STARTTLS certificate: made once under DataDir/tls, reused, or taken from the configured PEM
// pair; checked by a real TLS handshake over loopback TCP, as the listener will use it.
using System.Net.Security;
using System.Net.Sockets;
using System.Net;
using System.Runtime.Versioning;
using System.Security.Cryptography.X509Certificates;
using System.Security.Cryptography;
using Sluice.Core.Configuration;
using Sluice.Receive.Tls;
using Sluice.Testing;

namespace Sluice.Receive.Tests;

public sealed class ServerCertificateTests
{
    private const string Host = "mx.cert.test";

    private static SluiceOptions Options(TempDirectory dir) => new() { Hostname = Host, DataDir = dir.File("var") };

    [Fact]
    public void Without_configuration_a_self_signed_certificate_is_made_and_logged_once()
    {
        using var dir = new TempDirectory();
        var options = Options(dir);
        var log = new List<string>();

        using var cert = ServerCertificate.LoadOrCreate(options, log.Add);

        Assert.Equal([$"tls: made a self-signed certificate for {Host} in {options.TlsDirectory}"], log);
        Assert.True(cert.HasPrivateKey);
        Assert.Equal($"CN={Host}", cert.Subject);
        Assert.Equal(cert.Subject, cert.Issuer);
        Assert.Equal(Host, cert.GetNameInfo(X509NameType.DnsName, forIssuer: false));
        Assert.Contains(Host, cert.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateDnsNames());
        Assert.Contains(cert.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<Oid>(),
            o => o.Value == "1.3.6.1.5.5.7.3.1");
        using var key = cert.GetECDsaPublicKey();
        Assert.Equal(256, key?.KeySize);
        Assert.InRange(cert.NotBefore.ToUniversalTime(), DateTime.UtcNow.AddDays(-1).AddMinutes(-5), DateTime.UtcNow.AddHours(-23));
        Assert.True(cert.NotAfter.ToUniversalTime() > DateTime.UtcNow.AddYears(9).AddDays(360));
    }

    [Fact]
    [UnsupportedOSPlatform("windows")] // file modes are POSIX
    public void The_key_file_is_private_and_the_directory_is_owner_only()
    {
        using var dir = new TempDirectory();
        var options = Options(dir);
        using var cert = ServerCertificate.LoadOrCreate(options, _ => { });

        var key = Path.Combine(options.TlsDirectory, "key.pem");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(options.TlsDirectory));
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", File.ReadAllText(key), StringComparison.Ordinal);
        Assert.StartsWith("-----BEGIN CERTIFICATE-----", File.ReadAllText(Path.Combine(options.TlsDirectory, "cert.pem")), StringComparison.Ordinal);
        Assert.Equal(["cert.pem", "key.pem"], Directory.GetFiles(options.TlsDirectory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_second_call_reuses_the_certificate_on_disk()
    {
        using var dir = new TempDirectory();
        var options = Options(dir);
        var log = new List<string>();
        using var first = ServerCertificate.LoadOrCreate(options, log.Add);

        using var second = ServerCertificate.LoadOrCreate(options, log.Add);

        Assert.Equal(first.Thumbprint, second.Thumbprint);
        Assert.True(second.HasPrivateKey);
        Assert.Single(log);
    }

    [Fact]
    public void A_lone_cert_pem_without_its_key_is_replaced_by_a_new_pair()
    {
        using var dir = new TempDirectory();
        var options = Options(dir);
        using var first = ServerCertificate.LoadOrCreate(options, _ => { });
        File.Delete(Path.Combine(options.TlsDirectory, "key.pem"));
        var log = new List<string>();

        using var second = ServerCertificate.LoadOrCreate(options, log.Add);

        Assert.NotEqual(first.Thumbprint, second.Thumbprint);
        Assert.True(second.HasPrivateKey);
        Assert.Single(log);
    }

    [Fact]
    public async Task The_self_signed_certificate_serves_a_real_tls_handshake()
    {
        using var dir = new TempDirectory();
        var options = Options(dir);
        using var made = ServerCertificate.LoadOrCreate(options, _ => { });
        using var reloaded = ServerCertificate.LoadOrCreate(options, _ => { });

        Assert.Equal($"CN={Host}", await HandshakeAsync(made));
        Assert.Equal($"CN={Host}", await HandshakeAsync(reloaded));
    }

    [Fact]
    public async Task A_configured_pem_pair_is_used_and_nothing_is_made()
    {
        using var dir = new TempDirectory();
        var options = Options(dir);
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=configured.test", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var own = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        options.Smtp.TlsCertificate = dir.File("server.crt");
        options.Smtp.TlsKey = dir.File("server.key");
        await File.WriteAllTextAsync(options.Smtp.TlsCertificate, own.ExportCertificatePem());
        await File.WriteAllTextAsync(options.Smtp.TlsKey, rsa.ExportPkcs8PrivateKeyPem());
        var log = new List<string>();

        using var cert = ServerCertificate.LoadOrCreate(options, log.Add);

        Assert.Equal(own.Thumbprint, cert.Thumbprint);
        Assert.True(cert.HasPrivateKey);
        Assert.Empty(log);
        Assert.False(Directory.Exists(options.TlsDirectory));
        Assert.Equal("CN=configured.test", await HandshakeAsync(cert));
    }

    [Fact]
    public async Task A_bad_certificate_file_names_the_key_and_the_file()
    {
        using var dir = new TempDirectory();
        var options = await ConfiguredAsync(dir);
        await File.WriteAllTextAsync(options.Smtp.TlsCertificate!, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n");

        var e = Assert.Throws<ConfigurationException>(() => ServerCertificate.LoadOrCreate(options, _ => { }));

        Assert.Contains("'Smtp:TlsCertificate'", e.Message, StringComparison.Ordinal);
        Assert.Contains(options.Smtp.TlsCertificate!, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_file_without_a_pem_key_names_the_key_and_the_file()
    {
        using var dir = new TempDirectory();
        var options = await ConfiguredAsync(dir);
        await File.WriteAllTextAsync(options.Smtp.TlsKey!, "this is no key\n");

        var e = Assert.Throws<ConfigurationException>(() => ServerCertificate.LoadOrCreate(options, _ => { }));

        Assert.Contains("'Smtp:TlsKey'", e.Message, StringComparison.Ordinal);
        Assert.Contains(options.Smtp.TlsKey!, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_of_another_certificate_names_the_key_file()
    {
        using var dir = new TempDirectory();
        var options = await ConfiguredAsync(dir);
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await File.WriteAllTextAsync(options.Smtp.TlsKey!, other.ExportPkcs8PrivateKeyPem());

        var e = Assert.Throws<ConfigurationException>(() => ServerCertificate.LoadOrCreate(options, _ => { }));

        Assert.Contains("'Smtp:TlsKey'", e.Message, StringComparison.Ordinal);
        Assert.Contains(options.Smtp.TlsKey!, e.Message, StringComparison.Ordinal);
        Assert.Contains("matching", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_configured_file_names_the_key_and_the_file()
    {
        using var dir = new TempDirectory();
        var options = await ConfiguredAsync(dir);
        File.Delete(options.Smtp.TlsCertificate!);

        var e = Assert.Throws<ConfigurationException>(() => ServerCertificate.LoadOrCreate(options, _ => { }));

        Assert.Contains("'Smtp:TlsCertificate'", e.Message, StringComparison.Ordinal);
        Assert.Contains(options.Smtp.TlsCertificate!, e.Message, StringComparison.Ordinal);
        Assert.Contains("cannot read", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Options naming a valid PEM pair (copied from a made self-signed one) in <paramref name="dir"/>.</summary>
    private static async Task<SluiceOptions> ConfiguredAsync(TempDirectory dir)
    {
        var made = Options(dir);
        ServerCertificate.LoadOrCreate(made, _ => { }).Dispose();
        var options = Options(dir);
        options.Smtp.TlsCertificate = dir.File("server.crt");
        options.Smtp.TlsKey = dir.File("server.key");
        await File.WriteAllTextAsync(options.Smtp.TlsCertificate, await File.ReadAllTextAsync(Path.Combine(made.TlsDirectory, "cert.pem")));
        await File.WriteAllTextAsync(options.Smtp.TlsKey, await File.ReadAllTextAsync(Path.Combine(made.TlsDirectory, "key.pem")));
        return options;
    }

    /// <summary>SslStream server and client over a loopback TCP connection; returns the subject the client saw.</summary>
    private static async Task<string> HandshakeAsync(X509Certificate2 certificate)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        var accept = listener.AcceptTcpClientAsync();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var server = await accept;

        await using var serverTls = new SslStream(server.GetStream());
        await using var clientTls = new SslStream(client.GetStream());
        string? seen = null;
        var serving = serverTls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate });
        await clientTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = Host,
            RemoteCertificateValidationCallback = (_, cert, _, _) =>
            {
                seen = cert?.Subject;
                return cert is not null;
            },
        });
        await serving.WaitAsync(TimeSpan.FromSeconds(30));

        // Data crosses in both directions, so the session keys work, not only the handshake.
        await clientTls.WriteAsync("EHLO\r\n"u8.ToArray());
        var buffer = new byte[6];
        await serverTls.ReadExactlyAsync(buffer);
        Assert.Equal("EHLO\r\n"u8.ToArray(), buffer);
        await serverTls.WriteAsync("250 OK\r\n"u8.ToArray());
        var reply = new byte[8];
        await clientTls.ReadExactlyAsync(reply);
        Assert.Equal("250 OK\r\n"u8.ToArray(), reply);
        Assert.True(serverTls.IsAuthenticated && clientTls.IsAuthenticated && clientTls.IsEncrypted);
        return seen ?? throw new InvalidOperationException("the client saw no certificate");
    }
}
