// Outbound STARTTLS against a sink with a self-signed certificate, per Delivery.TlsPolicy: used when
// offered by default, never for "none", and for "required" a certificate that cannot be verified (or
// no STARTTLS at all) defers the mail: not a byte of it goes out in plaintext.
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Delivery.Smtp;
using Sluice.Testing;

namespace Sluice.Delivery.Tests;

[Collection(DnsCollection.Name)]
public sealed class TlsDeliveryTests(TestDns dns)
{
    private static readonly byte[] Message = Encoding.ASCII.GetBytes("Subject: tls\r\nFrom: <s@client.test>\r\n\r\nbody\r\n");

    private SmtpRelayAgent Agent(int port, string? policy) =>
        new(new SmtpRoutes(new Dictionary<string, string>()), dns.Resolver(), "client.test", new DeliveryOptions
        {
            Port = port, ConnectTimeout = TimeSpan.FromSeconds(2), CommandTimeout = TimeSpan.FromSeconds(10),
            TlsPolicy = policy is null ? new() : new() { ["pref.test"] = policy },
        }, TimeProvider.System);

    private static Task<RecipientResult[]> Deliver(SmtpRelayAgent agent) =>
        agent.DeliverAsync(new DeliveryRequest("m1", "s@client.test", ["rcpt@pref.test"], "pref.test", Message), CancellationToken.None);

    private static async Task<SinksOnOnePort> TlsSinksAsync(bool offerTls)
    {
        var sinks = await SinksOnOnePort.StartAsync(TestDns.First, TestDns.Second);
        if (offerTls)
        {
            sinks[TestDns.First].Certificate = SelfSignedCertificate.For("first.pref.test");
            sinks[TestDns.Second].Certificate = SelfSignedCertificate.For("second.pref.test");
        }
        return sinks;
    }

    [Fact]
    public async Task By_default_STARTTLS_is_used_when_offered_whatever_the_certificate()
    {
        await using var sinks = await TlsSinksAsync(offerTls: true);
        await using var agent = Agent(sinks.Port, policy: null);
        Assert.Equal(DeliveryStatus.Delivered, Assert.Single(await Deliver(agent)).Status);
        Assert.True(Assert.Single(sinks[TestDns.First].Messages).Tls);
    }

    [Fact]
    public async Task Opportunistic_TLS_sends_in_plaintext_to_a_server_without_STARTTLS()
    {
        await using var sinks = await TlsSinksAsync(offerTls: false);
        await using var agent = Agent(sinks.Port, "opportunistic");
        Assert.Equal(DeliveryStatus.Delivered, Assert.Single(await Deliver(agent)).Status);
        Assert.False(Assert.Single(sinks[TestDns.First].Messages).Tls);
    }

    [Fact]
    public async Task Policy_none_sends_in_plaintext_even_when_STARTTLS_is_offered()
    {
        await using var sinks = await TlsSinksAsync(offerTls: true);
        await using var agent = Agent(sinks.Port, "none");
        Assert.Equal(DeliveryStatus.Delivered, Assert.Single(await Deliver(agent)).Status);
        Assert.False(Assert.Single(sinks[TestDns.First].Messages).Tls);
    }

    [Fact]
    public async Task Required_TLS_to_an_unverifiable_certificate_defers_and_never_falls_back_to_plaintext()
    {
        await using var sinks = await TlsSinksAsync(offerTls: true);
        await using var agent = Agent(sinks.Port, "required");
        var result = Assert.Single(await Deliver(agent));
        Assert.Equal(DeliveryStatus.Deferred, result.Status);
        Assert.True(result.DestinationUnavailable);
        Assert.Contains("TLS handshake with first.pref.test failed", result.Text, StringComparison.Ordinal);
        Assert.Contains("TLS handshake with second.pref.test failed", result.Text, StringComparison.Ordinal);
        // Both MX hosts were reached, once each, and neither got a message.
        Assert.Equal(1, sinks[TestDns.First].Sessions.Total);
        Assert.Equal(1, sinks[TestDns.Second].Sessions.Total);
        Assert.Empty(sinks[TestDns.First].Messages);
        Assert.Empty(sinks[TestDns.Second].Messages);
    }

    [Fact]
    public async Task Required_TLS_to_a_server_without_STARTTLS_defers()
    {
        await using var sinks = await TlsSinksAsync(offerTls: false);
        await using var agent = Agent(sinks.Port, "required");
        var result = Assert.Single(await Deliver(agent));
        Assert.Equal(DeliveryStatus.Deferred, result.Status);
        Assert.Contains("does not offer STARTTLS", result.Text, StringComparison.Ordinal);
        Assert.Empty(sinks[TestDns.First].Messages);
        Assert.Empty(sinks[TestDns.Second].Messages);
    }
}
