// Outbound DKIM: the agent signs mail from a domain with a key in Delivery.Dkim, and the signature
// verifies at the sink with MimeKit's DkimVerifier and with dkimpy on the exact bytes received, both
// fetching the public key over DNS from a real server on loopback. Mail from other domains,
// upstream signatures included, goes on byte for byte.
using System.Security.Cryptography;
using System.Text;
using DnsClient;
using MimeKit;
using MimeKit.Cryptography;
using Org.BouncyCastle.Crypto;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Delivery.Smtp;
using Sluice.Testing;

namespace Sluice.Delivery.Tests;

public sealed class DkimSigningTests : IAsyncLifetime
{
    private const string Selector = "s2026";
    private readonly TempDirectory _dir = new();
    private readonly SmtpSink _sink = new();
    private readonly RSA _key = RSA.Create(2048);
    private UnboundServer _dns = null!;

    private static string Message(string from) =>
        $"From: Alice <alice@{from}>\r\nTo: <bob@dest.test>\r\nSubject: signed\r\nDate: Mon, 2 Mar 2026 12:00:00 +0000\r\n"
        + $"Message-ID: <1@{from}>\r\n\r\nHello,\r\n.a line that is dot-stuffed on the wire\r\n  trailing spaces  \r\n";

    public async Task InitializeAsync()
    {
        // TXT strings hold at most 255 bytes (RFC 1035 §3.3.14): the key is split, the verifier joins the parts.
        var p = "p=" + Convert.ToBase64String(_key.ExportSubjectPublicKeyInfo());
        var parts = string.Join(' ', p.Chunk(200).Select(c => $"\"{new string(c)}\""));
        _dns = await UnboundServer.StartAsync(
            [.. new[] { "sign.test", "upstream.test" }.Select(d => $"{Selector}._domainkey.{d}. 300 IN TXT \"v=DKIM1; k=rsa; \" {parts}")], []);
        await File.WriteAllTextAsync(_dir.File("sign.test.pem"), _key.ExportPkcs8PrivateKeyPem());
    }

    private SmtpRelayAgent Agent() => new(new SmtpRoutes(new Dictionary<string, string> { ["*"] = $"127.0.0.1:{_sink.Port}" }),
        new MxResolver(new DnsOptions { Servers = [_dns.Address] }), "client.test", new DeliveryOptions
        {
            Dkim = new() { ["sign.test"] = new DkimKeyOptions { Selector = Selector, KeyFile = _dir.File("sign.test.pem") } },
        }, TimeProvider.System);

    private static async Task Deliver(SmtpRelayAgent agent, string message)
    {
        var result = await agent.DeliverAsync(new DeliveryRequest("m1", "alice@sign.test", ["bob@dest.test"], "dest.test", Encoding.ASCII.GetBytes(message)), CancellationToken.None);
        Assert.Equal(DeliveryStatus.Delivered, Assert.Single(result).Status);
    }

    private async Task<bool> VerifyAsync(SmtpSink.Received received)
    {
        var message = MimeMessage.Load(new MemoryStream(Encoding.Latin1.GetBytes(received.Data)));
        var signature = message.Headers[message.Headers.IndexOf(HeaderId.DkimSignature)];
        return await new DkimVerifier(new DnsKeys(_dns)).VerifyAsync(message, signature);
    }

    [Fact]
    public async Task Mail_from_a_domain_with_a_key_is_signed_and_verifies_at_the_sink()
    {
        await using var agent = Agent();
        await Deliver(agent, Message("sign.test"));
        var received = Assert.Single(_sink.Messages);
        Assert.StartsWith("DKIM-Signature:", received.Data, StringComparison.Ordinal);
        Assert.Contains($"d=sign.test; s={Selector};", received.Data, StringComparison.Ordinal);
        Assert.True(await VerifyAsync(received), received.Data);
        // The spooled bytes follow the signature unchanged.
        Assert.EndsWith(Message("sign.test"), received.Data, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_signature_is_folded_with_CRLF_and_dkimpy_verifies_the_bytes_the_sink_received()
    {
        await using var agent = Agent();
        await Deliver(agent, Message("sign.test"));
        var received = Encoding.Latin1.GetBytes(Assert.Single(_sink.Messages).Data);
        // A 2048-bit signature is folded over several lines: each must end in CRLF (RFC 5321 §2.3.8).
        Assert.True(received.AsSpan(0, received.AsSpan().IndexOf("\r\n\r\n"u8)).Count("\r\n\t"u8) >= 4, Encoding.Latin1.GetString(received));
        Assert.Empty(LineEnds.Bare(received));
        var (verified, log) = await DkimPy.VerifyAsync(received, _dns);
        Assert.True(verified, log);
    }

    [Fact]
    public async Task An_8bit_message_to_a_server_without_8BITMIME_is_converted_first_and_then_signed()
    {
        // The sink offers no 8BITMIME: the body is re-encoded, and our signature must cover what went out.
        var eightBit = Message("sign.test").Replace("\r\n\r\n", "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + "Content-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\n", StringComparison.Ordinal);
        await using var agent = Agent();
        var result = await agent.DeliverAsync(new DeliveryRequest("m1", "alice@sign.test", ["bob@dest.test"], "dest.test", Encoding.UTF8.GetBytes(eightBit)), CancellationToken.None);
        Assert.Contains("converted to 7-bit", Assert.Single(result).Text, StringComparison.Ordinal);
        var received = Assert.Single(_sink.Messages);
        Assert.Contains("Content-Transfer-Encoding: quoted-printable", received.Data, StringComparison.Ordinal);
        Assert.True(await VerifyAsync(received), received.Data);
        var bytes = Encoding.Latin1.GetBytes(received.Data);
        Assert.Empty(LineEnds.Bare(bytes));
        var (verified, log) = await DkimPy.VerifyAsync(bytes, _dns);
        Assert.True(verified, log);
    }

    [Fact]
    public async Task Every_attempt_carries_the_same_signature()
    {
        await using var agent = Agent();
        await Deliver(agent, Message("sign.test"));
        await Deliver(agent, Message("sign.test"));
        var both = _sink.Messages.Select(m => m.Data).ToList();
        Assert.Equal(2, both.Count);
        Assert.Equal(both[0], both[1]);
    }

    [Fact]
    public async Task Mail_signed_upstream_by_another_domain_is_relayed_byte_for_byte_and_still_verifies()
    {
        var upstream = MimeMessage.Load(new MemoryStream(Encoding.ASCII.GetBytes(Message("upstream.test"))));
        new DkimSigner(_dir.File("sign.test.pem"), "upstream.test", Selector).Sign(new FormatOptions { NewLineFormat = NewLineFormat.Dos }, upstream, [HeaderId.From, HeaderId.Subject]);
        using var bytes = new MemoryStream();
        upstream.WriteTo(new FormatOptions { NewLineFormat = NewLineFormat.Dos }, bytes);
        var signedUpstream = Encoding.ASCII.GetString(bytes.ToArray());

        await using var agent = Agent();
        await Deliver(agent, signedUpstream);
        var received = Assert.Single(_sink.Messages);
        Assert.Equal(signedUpstream, received.Data);
        Assert.True(await VerifyAsync(received));
    }

    public async Task DisposeAsync()
    {
        await _sink.DisposeAsync();
        await _dns.DisposeAsync();
        _key.Dispose();
        _dir.Dispose();
    }

    /// <summary>The public key from the selector's TXT record, asked of the loopback DNS server.</summary>
    private sealed class DnsKeys(UnboundServer server) : DkimPublicKeyLocatorBase
    {
        private readonly LookupClient _dns = new(new LookupClientOptions(new NameServer(System.Net.IPAddress.Loopback, server.Port)) { UseCache = false });

        public override AsymmetricKeyParameter LocatePublicKey(string methods, string domain, string selector, CancellationToken cancellationToken = default) =>
            LocatePublicKeyAsync(methods, domain, selector, cancellationToken).GetAwaiter().GetResult();

        public override async Task<AsymmetricKeyParameter> LocatePublicKeyAsync(string methods, string domain, string selector, CancellationToken cancellationToken = default)
        {
            var answer = await _dns.QueryAsync($"{selector}._domainkey.{domain}", QueryType.TXT, QueryClass.IN, cancellationToken);
            return GetPublicKey(string.Concat(answer.Answers.TxtRecords().Single().Text));
        }
    }
}
