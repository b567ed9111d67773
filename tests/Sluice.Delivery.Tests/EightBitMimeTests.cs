// RFC 6152 §3 at the next hop: an 8-bit body goes unchanged to a sink that offers 8BITMIME, is
// re-encoded to 7-bit MIME for one that does not, and goes unchanged (with a note in the delivery
// result) when a DKIM signature would break, all over real sockets to a loopback sink.
using System.Text;
using MimeKit;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Delivery.Smtp;
using Sluice.Testing;

namespace Sluice.Delivery.Tests;

public sealed class EightBitMimeTests : IAsyncLifetime
{
    private const string Text = "Grüße aus Köln, 50 € bitte.";
    private readonly SmtpSink _sink = new();

    private static byte[] Message(string extraHeaders = "") => Encoding.UTF8.GetBytes(
        $"{extraHeaders}From: <a@client.test>\r\nTo: <b@dest.test>\r\nSubject: eight\r\nMIME-Version: 1.0\r\n"
        + $"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{Text}\r\n");

    private async Task<RecipientResult> DeliverAsync(byte[] message)
    {
        await using var agent = new SmtpRelayAgent(new SmtpRoutes(new Dictionary<string, string> { ["*"] = $"127.0.0.1:{_sink.Port}" }),
            new MxResolver(new DnsOptions { Servers = ["127.0.0.1:1"] }), "client.test", new DeliveryOptions(), TimeProvider.System);
        var result = Assert.Single(await agent.DeliverAsync(new DeliveryRequest("m1", "a@client.test", ["b@dest.test"], "dest.test", message), CancellationToken.None));
        Assert.Equal(DeliveryStatus.Delivered, result.Status);
        return result;
    }

    /// <summary>What the sink got, as bytes: it reads Latin-1, one char per byte.</summary>
    private byte[] Received() => Encoding.Latin1.GetBytes(Assert.Single(_sink.Messages).Data);

    [Fact]
    public async Task To_a_server_with_8BITMIME_the_body_goes_unchanged()
    {
        _sink.Extensions = ["PIPELINING", "8BITMIME"];
        var result = await DeliverAsync(Message());
        Assert.Equal(Message(), Received());
        Assert.DoesNotContain("8-bit", result.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task To_a_server_without_8BITMIME_an_8bit_body_is_converted_to_quoted_printable()
    {
        var result = await DeliverAsync(Message());
        var received = Received();
        Assert.True(Ascii.IsValid(received), Encoding.Latin1.GetString(received));
        var parsed = MimeMessage.Load(new MemoryStream(received));
        Assert.Equal(ContentEncoding.QuotedPrintable, Assert.IsType<TextPart>(parsed.Body).ContentTransferEncoding);
        Assert.Equal(Text, parsed.TextBody?.TrimEnd());
        Assert.Equal("eight", parsed.Subject);
        Assert.Contains("8-bit body converted to 7-bit MIME", result.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_7bit_body_goes_unchanged_to_a_server_without_8BITMIME()
    {
        var plain = Encoding.ASCII.GetBytes("From: <a@client.test>\r\nSubject: plain\r\n\r\nonly ascii\r\n");
        var result = await DeliverAsync(plain);
        Assert.Equal(plain, Received());
        Assert.DoesNotContain("8-bit", result.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_DKIM_signed_8bit_body_goes_unchanged_and_the_result_says_why()
    {
        var signed = Message("DKIM-Signature: v=1; a=rsa-sha256; d=upstream.test; s=s1; h=from; bh=x; b=y\r\n");
        var result = await DeliverAsync(signed);
        Assert.Equal(signed, Received());
        Assert.Contains("8-bit body sent as is to a server without 8BITMIME: converting it would break its DKIM-Signature", result.Text, StringComparison.Ordinal);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _sink.DisposeAsync();
}
