// RFC 6152 §3 at the next hop: an 8-bit message goes unchanged to a sink that offers 8BITMIME and is
// converted to 7-bit MIME (RFC 2045) for one that does not, non-MIME mail and 8-bit headers included;
// one whose DKIM signature conversion would break follows Delivery.EightBitDkim. All over real
// sockets to a loopback sink that records the exact bytes.
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

    private async Task<RecipientResult> DeliverAsync(byte[] message, string eightBitDkim = "bounce", DeliveryStatus expected = DeliveryStatus.Delivered)
    {
        await using var agent = new SmtpRelayAgent(new SmtpRoutes(new Dictionary<string, string> { ["*"] = $"127.0.0.1:{_sink.Port}" }),
            new MxResolver(new DnsOptions { Servers = ["127.0.0.1:1"] }), "client.test", new DeliveryOptions { EightBitDkim = eightBitDkim }, TimeProvider.System);
        var result = Assert.Single(await agent.DeliverAsync(new DeliveryRequest("m1", "a@client.test", ["b@dest.test"], "dest.test", message), CancellationToken.None));
        Assert.True(result.Status == expected, result.Text);
        return result;
    }

    /// <summary>What the sink got, as bytes: it reads Latin-1, one char per byte.</summary>
    private byte[] Received() => Encoding.Latin1.GetBytes(Assert.Single(_sink.Messages).Data);

    /// <summary>What went to the sink is 7-bit with CRLF line ends only, and parses as MIME 1.0.</summary>
    private MimeMessage ReceivedSevenBitMime()
    {
        var received = Received();
        Assert.True(Ascii.IsValid(received), Encoding.Latin1.GetString(received));
        Assert.Empty(LineEnds.Bare(received));
        var parsed = MimeMessage.Load(new MemoryStream(received));
        Assert.Equal("1.0", parsed.Headers[HeaderId.MimeVersion]?.Trim());
        return parsed;
    }

    private static byte[] Join(params byte[][] parts) => [.. parts.SelectMany(p => p)];

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
        var parsed = ReceivedSevenBitMime();
        Assert.Equal(ContentEncoding.QuotedPrintable, Assert.IsType<TextPart>(parsed.Body).ContentTransferEncoding);
        Assert.Equal(Text, parsed.TextBody?.TrimEnd());
        Assert.Equal("eight", parsed.Subject);
        Assert.Contains("8-bit message converted to 7-bit MIME", result.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_non_MIME_UTF8_message_becomes_MIME_text_plain_in_utf8()
    {
        var plain = Encoding.UTF8.GetBytes($"From: <a@client.test>\r\nSubject: plain\r\n\r\n{Text}\r\n");
        await DeliverAsync(plain);
        var parsed = ReceivedSevenBitMime();
        var body = Assert.IsType<TextPart>(parsed.Body);
        Assert.Equal("text/plain", body.ContentType.MimeType);
        Assert.Equal("utf-8", body.ContentType.Charset);
        Assert.Equal(ContentEncoding.QuotedPrintable, body.ContentTransferEncoding);
        Assert.Equal(Text, body.Text.TrimEnd());
    }

    [Fact]
    public async Task A_non_MIME_message_in_another_8bit_charset_is_labelled_unknown_8bit_and_keeps_its_bytes()
    {
        var latin1 = Encoding.Latin1.GetBytes("Gr\u00fc\u00dfe, caf\u00e9\r\n");
        await DeliverAsync(Join(Encoding.ASCII.GetBytes("From: <a@client.test>\r\nSubject: latin\r\n\r\n"), latin1));
        var body = Assert.IsType<TextPart>(ReceivedSevenBitMime().Body);
        Assert.Equal("unknown-8bit", body.ContentType.Charset);
        using var decoded = new MemoryStream();
        body.Content!.DecodeTo(decoded);
        Assert.Equal(latin1, decoded.ToArray());
    }

    [Fact]
    public async Task An_8bit_header_of_a_message_without_SMTPUTF8_goes_in_encoded_words()
    {
        var message = Encoding.UTF8.GetBytes("From: J\u00f6rg <a@client.test>\r\nSubject: Gr\u00fc\u00dfe\r\n\r\nonly ascii\r\n");
        var result = await DeliverAsync(message);
        var parsed = ReceivedSevenBitMime();
        Assert.Equal("Gr\u00fc\u00dfe", parsed.Subject);
        Assert.Equal("J\u00f6rg", Assert.Single(parsed.From.Mailboxes).Name);
        Assert.Equal("only ascii", parsed.TextBody?.TrimEnd());
        Assert.Contains("8-bit message converted to 7-bit MIME", result.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_7bit_body_goes_unchanged_to_a_server_without_8BITMIME()
    {
        var plain = Encoding.ASCII.GetBytes("From: <a@client.test>\r\nSubject: plain\r\n\r\nonly ascii\r\n");
        var result = await DeliverAsync(plain);
        Assert.Equal(plain, Received());
        Assert.DoesNotContain("8-bit", result.Text, StringComparison.Ordinal);
    }

    private static byte[] SignedUpstream() => Message("DKIM-Signature: v=1; a=rsa-sha256; d=upstream.test; s=s1; h=from; bh=x; b=y\r\n");

    [Fact]
    public async Task A_DKIM_signed_8bit_message_is_returned_with_5_6_3_by_default_and_nothing_is_sent()
    {
        var result = await DeliverAsync(SignedUpstream(), expected: DeliveryStatus.Failed);
        Assert.StartsWith("554 5.6.3 ", result.Text, StringComparison.Ordinal);
        Assert.Contains("would break its DKIM-Signature (Delivery.EightBitDkim: bounce)", result.Text, StringComparison.Ordinal);
        Assert.Empty(_sink.Messages);
    }

    [Fact]
    public async Task A_DKIM_signed_8bit_message_goes_unchanged_when_the_operator_chose_send()
    {
        var result = await DeliverAsync(SignedUpstream(), "send");
        Assert.Equal(SignedUpstream(), Received());
        Assert.Contains("8-bit message sent as is to a server without 8BITMIME: converting it would break its DKIM-Signature", result.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_DKIM_signed_8bit_message_is_converted_when_the_operator_chose_convert()
    {
        var result = await DeliverAsync(SignedUpstream(), "convert");
        var parsed = ReceivedSevenBitMime();
        Assert.Equal(Text, parsed.TextBody?.TrimEnd());
        Assert.Contains("its DKIM-Signature no longer verifies (Delivery.EightBitDkim: convert)", result.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_8bit_preamble_that_cannot_be_converted_is_returned_with_5_6_3()
    {
        var multipart = Encoding.UTF8.GetBytes("From: <a@client.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            + "Pr\u00e4ambel\r\n--b\r\nContent-Type: text/plain\r\n\r\nascii\r\n--b--\r\n");
        var result = await DeliverAsync(multipart, expected: DeliveryStatus.Failed);
        Assert.StartsWith("554 5.6.3 ", result.Text, StringComparison.Ordinal);
        Assert.Empty(_sink.Messages);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _sink.DisposeAsync();
}
