// Our DKIM signatures and RFC 6152 conversions against peers nobody here wrote, in the real process:
// a signed message relayed on through a second Sluice (a strict receiver: a bare LF gets 550 5.6.0)
// and through a private Exim 4.96, and the bytes each stored checked as they are: CRLF only, 7-bit
// MIME where Exim offered no 8BITMIME, and the signature verified by dkimpy, which repairs nothing.
using System.Security.Cryptography;
using System.Text;
using MimeKit;
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed class DkimEightBitInteropTests : IAsyncLifetime
{
    private const string Selector = "s2026";
    private const string Greeting = "Grüße aus Köln, 50 € bitte.";
    private readonly TempDirectory _keys = new();
    private readonly RSA _key = RSA.Create(2048);
    private UnboundServer _dns = null!;

    public async Task InitializeAsync()
    {
        // TXT strings hold at most 255 bytes (RFC 1035 §3.3.14): the key is split, verifiers join the parts.
        var p = "p=" + Convert.ToBase64String(_key.ExportSubjectPublicKeyInfo());
        var parts = string.Join(' ', p.Chunk(200).Select(c => $"\"{new string(c)}\""));
        _dns = await UnboundServer.StartAsync([$"{Selector}._domainkey.sign.test. 300 IN TXT \"v=DKIM1; k=rsa; \" {parts}"], []);
        SecretFile.Write(_keys.File("sign.test.pem"), _key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>A Sluice that signs mail from sign.test and sends every remote domain to <paramref name="port"/>.</summary>
    private Task<Instance> StartSignerAsync(int port) => Instance.StartAsync(c =>
    {
        c["Routes"] = new Dictionary<string, string> { ["*"] = $"127.0.0.1:{port}" };
        c["Delivery"] = new { Dkim = new Dictionary<string, object> { ["sign.test"] = new { Selector, KeyFile = _keys.File("sign.test.pem") } } };
    });

    private static async Task InjectAsync(Instance sluice, string message, string recipient)
    {
        var env = new Dictionary<string, string> { ["SLUICE__Smtp__Listen__0"] = $"127.0.0.1:{sluice.Process.SmtpPort}" };
        var (exit, _, stderr) = await SluiceProcess.RunAsync(sluice.Dir.Path, message, env, "inject", "--config", sluice.ConfigFile, "-f", "alice@sign.test", recipient);
        Assert.True(exit == 0, stderr);
    }

    private static string Signed(string body, string headers = "") =>
        $"From: Alice <alice@sign.test>\nTo: <bob@dest.test>\nSubject: signed\nDate: Mon, 2 Mar 2026 12:00:00 +0000\nMessage-ID: <1@sign.test>\n{headers}\n{body}\n";

    /// <summary>What Exim stored (CRLF lines: its transport's use_crlf) has no bare CR or LF, and the signature verifies.</summary>
    private async Task AssertCrlfAndVerifiesAsync(byte[] stored)
    {
        Assert.Empty(LineEnds.Bare(stored));
        await AssertVerifiesAsync(stored);
    }

    private async Task AssertVerifiesAsync(byte[] stored)
    {
        var (verified, log) = await DkimPy.VerifyAsync(stored, _dns);
        Assert.True(verified, log + "\n" + Encoding.Latin1.GetString(stored));
    }

    [Fact]
    public async Task A_message_we_sign_passes_a_strict_Sluice_and_its_signature_verifies_in_the_mailbox()
    {
        await using var strict = await Instance.StartAsync(c =>
        {
            Instance.Smtp(c)["LocalDomains"] = new[] { "localhost", "dest.test" };
            c["Channels"] = new object[]
            {
                new { Name = "local", Transport = "maildir", Domains = new[] { "localhost", "dest.test" }, Concurrency = 8 },
                new { Name = "remote", Transport = "smtp", Concurrency = 20, DestinationConcurrency = 10 },
            };
        });
        await using var signer = await StartSignerAsync(strict.Process.SmtpPort);

        await InjectAsync(signer, Signed("Hello,\n.a line that is dot-stuffed on the wire"), "bob@dest.test");
        // A bare LF anywhere would get 550 5.6.0 from the strict receiver, and the signer would log a failure.
        await signer.WaitForLogAsync(": success: ");
        await strict.WaitForLogAsync("delivered to maildir");
        // The Maildir holds LF lines, as Maildirs do (qmail-local, Postfix); the strict receiver checked the wire's CRLF.
        await AssertVerifiesAsync(await File.ReadAllBytesAsync(Assert.Single(strict.MaildirFiles("bob"))));
    }

    [Fact]
    public async Task To_Exim_without_8BITMIME_an_8bit_message_we_sign_arrives_as_7bit_MIME_and_verifies()
    {
        await using var exim = await EximServer.StartAsync(eightBitMime: false);
        await using var signer = await StartSignerAsync(exim.Port);

        // No MIME header at all: the conversion must make it MIME 1.0 text/plain in utf-8 (RFC 2045 §4).
        await InjectAsync(signer, Signed(Greeting), "bob@dest.test");
        var stored = Assert.Single(await exim.WaitForMessagesAsync(1, TimeSpan.FromSeconds(60)));
        await signer.WaitForLogAsync("8-bit message converted to 7-bit MIME");
        Assert.True(Ascii.IsValid(stored), Encoding.Latin1.GetString(stored));
        var parsed = MimeMessage.Load(new MemoryStream(stored));
        Assert.Equal("1.0", parsed.Headers[HeaderId.MimeVersion]?.Trim());
        var text = Assert.IsType<TextPart>(parsed.Body);
        Assert.Equal(("text/plain", "utf-8"), (text.ContentType.MimeType, text.ContentType.Charset));
        Assert.Equal(ContentEncoding.QuotedPrintable, text.ContentTransferEncoding);
        Assert.Equal(Greeting, text.Text.TrimEnd());
        await AssertCrlfAndVerifiesAsync(stored);
    }

    [Fact]
    public async Task To_Exim_with_8BITMIME_an_8bit_message_we_sign_goes_8bit_and_verifies()
    {
        await using var exim = await EximServer.StartAsync(eightBitMime: true);
        await using var signer = await StartSignerAsync(exim.Port);

        await InjectAsync(signer, Signed(Greeting, "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"), "bob@dest.test");
        var stored = Assert.Single(await exim.WaitForMessagesAsync(1, TimeSpan.FromSeconds(60)));
        // The very bytes that were sent, not re-encoded: the server said it takes 8-bit data.
        Assert.True(stored.AsSpan().IndexOf(Encoding.UTF8.GetBytes(Greeting)) >= 0, Encoding.Latin1.GetString(stored));
        await AssertCrlfAndVerifiesAsync(stored);
    }

    [Fact]
    public async Task To_Exim_without_8BITMIME_an_8bit_message_signed_upstream_is_returned_with_5_6_3_and_Exim_gets_nothing()
    {
        await using var exim = await EximServer.StartAsync(eightBitMime: false);
        await using var signer = await StartSignerAsync(exim.Port);

        var upstream = "DKIM-Signature: v=1; a=rsa-sha256; d=upstream.test; s=s1; c=relaxed/relaxed; h=from; bh=x; b=y\n"
            + Signed(Greeting).Replace("alice@sign.test", "carol@upstream.test", StringComparison.Ordinal);
        await InjectAsync(signer, upstream, "bob@dest.test");
        await signer.WaitForLogAsync("failure: 554 5.6.3 ");
        await signer.WaitForLogAsync("bounce msg ");
        // The bounce to carol (routed to Exim too, from <>) may arrive; the message itself never does.
        Assert.DoesNotContain(" <= carol@upstream.test ", exim.MainLog, StringComparison.Ordinal);
        Assert.All(exim.Messages, m => Assert.Contains("multipart/report", Encoding.Latin1.GetString(m), StringComparison.Ordinal));
    }

    public async Task DisposeAsync()
    {
        await _dns.DisposeAsync();
        _key.Dispose();
        _keys.Dispose();
    }
}
