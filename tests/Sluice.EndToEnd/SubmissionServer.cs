// One server per test class with every listener role, no trusted relay networks (so loopback is
// an ordinary client) and an AUTH user added with `sluice passwd`; and the TLS trust a client pins.
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Sluice.EndToEnd;

public sealed class SubmissionServer : IAsyncLifetime
{
    public const string User = "alice";
    public const string Password = "correct horse battery";

    internal Instance Sluice { get; private set; } = null!;
    internal X509Certificate2 Certificate { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Sluice = await Instance.StartAsync(c =>
        {
            Instance.Smtp(c)["Listen"] = Instance.AllRoles;
            Instance.Smtp(c)["RelayNetworks"] = Array.Empty<string>();
            // The tests that use this server send as several addresses at client.test.
            Instance.Smtp(c)["SenderLogins"] = new Dictionary<string, string[]> { [User] = ["@client.test"] };
        });
        Certificate = Sluice.LoadCertificate();
        await Sluice.AddUserAsync(User, Password);
    }

    public async Task DisposeAsync()
    {
        Certificate?.Dispose();
        if (Sluice is not null) await Sluice.DisposeAsync();
    }

    /// <summary>
    /// Accepts only <paramref name="trusted"/> as a self-signed root, and only for the name the client
    /// asked for (a name mismatch is never forgiven): what a client pinning the server's certificate does.
    /// </summary>
    internal static RemoteCertificateValidationCallback Pinned(X509Certificate2 trusted) => (_, certificate, _, errors) =>
    {
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.CustomTrustStore.Add(trusted);
        using var presented = new X509Certificate2(certificate);
        return chain.Build(presented);
    };
}
