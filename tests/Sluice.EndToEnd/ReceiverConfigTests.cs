// The receiver's configuration as `sluice serve` meets it: a bad listener role or TLS pair stops
// start-up with exit 78 naming the key; an operator's own PEM pair is what STARTTLS presents.
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed class ReceiverConfigTests
{
    private static async Task<(int Exit, string Stderr)> ServeAsync(TempDirectory dir, object smtp)
    {
        var config = dir.File("sluice.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new { Hostname = Instance.Hostname, DataDir = dir.File("var"), Smtp = smtp }));
        var (exit, _, stderr) = await SluiceProcess.RunAsync(dir.Path, "", "serve", "--config", config);
        return (exit, stderr);
    }

    [Fact]
    public async Task A_listen_role_that_does_not_exist_stops_serve_with_exit_78_naming_the_entry()
    {
        using var dir = new TempDirectory();
        var (exit, stderr) = await ServeAsync(dir, new { Listen = new[] { "127.0.0.1:0 bogus" } });
        Assert.Equal(78, exit);
        Assert.Contains("key 'Smtp:Listen:0': \"127.0.0.1:0 bogus\" is not an address:port", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_certificate_without_its_key_stops_serve_with_exit_78_naming_the_key()
    {
        using var dir = new TempDirectory();
        var (exit, stderr) = await ServeAsync(dir, new { Listen = new[] { "127.0.0.1:0" }, TlsCertificate = dir.File("cert.pem") });
        Assert.Equal(78, exit);
        Assert.Contains("key 'Smtp:TlsKey'", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("alice", "not an address", "key 'Smtp:SenderLogins:alice:0': \"not an address\" is not an address (user@domain, RFC 5321 §4.1.2), @domain, or * for any sender")]
    [InlineData("alice", "@not a domain", "key 'Smtp:SenderLogins:alice:0': \"@not a domain\" is not an address")]
    [InlineData("bob", ".bob@client.test", "key 'Smtp:SenderLogins:bob:0': \".bob@client.test\" is not an address")]
    public async Task A_bad_SenderLogins_entry_stops_serve_with_exit_78_naming_the_entry(string login, string sender, string expected)
    {
        using var dir = new TempDirectory();
        var (exit, stderr) = await ServeAsync(dir, new { Listen = new[] { "127.0.0.1:0" }, SenderLogins = new Dictionary<string, string[]> { [login] = [sender] } });
        Assert.Equal(78, exit);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_negative_LoginRatePerHour_stops_serve_with_exit_78()
    {
        using var dir = new TempDirectory();
        var (exit, stderr) = await ServeAsync(dir, new { Listen = new[] { "127.0.0.1:0" }, LoginRatePerHour = -1 });
        Assert.Equal(78, exit);
        Assert.Contains("key 'Smtp:LoginRatePerHour': must be 0 (no limit) or more messages an hour", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("missing", "Smtp:TlsCertificate")]
    [InlineData("other-key", "Smtp:TlsKey")]
    public async Task An_unusable_tls_pair_stops_serve_with_exit_78_naming_the_file_at_fault(string problem, string key)
    {
        using var dir = new TempDirectory();
        var (cert, keyFile) = WritePair(dir, "mine", Instance.Hostname);
        if (problem == "missing") cert = dir.File("nope.pem");
        else keyFile = WritePair(dir, "other", Instance.Hostname).Key;
        var (exit, stderr) = await ServeAsync(dir, new { Listen = new[] { "127.0.0.1:0" }, TlsCertificate = cert, TlsKey = keyFile });
        Assert.True(exit == 78, $"exit {exit}, stderr:\n{stderr}");
        Assert.Contains($"key '{key}'", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_configured_pem_pair_is_presented_on_starttls_and_no_self_signed_one_is_made()
    {
        string? cert = null, key = null;
        await using var sluice = await Instance.StartAsync(c =>
        {
            // The instance's directory exists before its config is written.
            var dir = Path.GetDirectoryName((string)c["DataDir"])!;
            (cert, key) = WritePair(dir, "operator", Instance.Hostname);
            Instance.Smtp(c)["TlsCertificate"] = cert;
            Instance.Smtp(c)["TlsKey"] = key;
        });
        using var trusted = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(cert!));
        await using var wire = await SmtpWire.OpenAsync(sluice.Process.SmtpPort);
        await wire.CommandAsync("EHLO wire.client.test");
        Assert.Equal("220 2.0.0 Ready to start TLS", await wire.CommandAsync("STARTTLS"));
        await wire.StartTlsAsync(trusted, Instance.Hostname);
        Assert.StartsWith("250-mx.sluice.test", await wire.CommandAsync("EHLO wire.client.test"), StringComparison.Ordinal);
        Assert.False(File.Exists(sluice.CertificateFile));
    }

    /// <summary>A self-signed PEM certificate and key for <paramref name="host"/>, as an operator would install.</summary>
    private static (string Cert, string Key) WritePair(TempDirectory dir, string name, string host) => WritePair(dir.Path, name, host);

    private static (string Cert, string Key) WritePair(string dir, string name, string host)
    {
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={host}", ecdsa, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(host);
        request.CertificateExtensions.Add(san.Build());
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var certFile = Path.Combine(dir, name + "-cert.pem");
        var keyFile = Path.Combine(dir, name + "-key.pem");
        File.WriteAllText(certFile, cert.ExportCertificatePem());
        SecretFile.Write(keyFile, ecdsa.ExportPkcs8PrivateKeyPem());
        return (certFile, keyFile);
    }
}
