// Our SMTP client (Sluice.Smtp.SmtpClientConnection) against MailKit's SmtpClient, relaying one
// spooled message over a kept-open loopback connection to a minimal in-process sink. MailKit sends a
// MimeMessage, so its case includes parsing the spooled bytes, as a relay using it would have to.
// Setup also checks what each put on the wire against the spooled bytes (printed; see INTERNALS.md).
using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using BenchmarkDotNet.Attributes;
using MailKit.Net.Smtp;
using MimeKit;
using Sluice.Smtp;

namespace Sluice.Bench;

[MemoryDiagnoser]
public class SmtpClientBenchmark
{
    /// <summary>A message as a relay meets it: an upstream DKIM signature, a Bcc, an 8-bit body, a folded header.</summary>
    public static readonly byte[] Spooled = Encoding.UTF8.GetBytes(
        "DKIM-Signature: v=1; a=rsa-sha256; d=upstream.test; s=s1; c=simple/simple;\r\n\th=from:subject; bh=x; b=y\r\n"
        + "From: <a@upstream.test>\r\nTo: <b@dest.test>\r\nBcc: <hidden@dest.test>\r\nSubject:   spaced  \r\n\tfolded\r\n"
        + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + string.Concat(Enumerable.Repeat("Grüße, a line of text that is long enough to matter.\r\n.leading dot\r\n", 40)));

    private readonly WireSink _sink = new();
    private SmtpClientConnection _ours = null!;
    private SmtpClient _mailkit = null!;
    private static readonly string[] Recipients = ["b@dest.test"];

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _ours = await SmtpClientConnection.ConnectAsync("127.0.0.1", _sink.Port, new SmtpTimeouts(), CancellationToken.None);
        await _ours.HelloAsync("bench.test", CancellationToken.None);
        _mailkit = new SmtpClient();
        await _mailkit.ConnectAsync("127.0.0.1", _sink.Port, global::MailKit.Security.SecureSocketOptions.None);
        await Ours();
        Console.WriteLine($"// ours: bytes on the wire equal the spooled bytes: {_sink.LastData.AsSpan().SequenceEqual(Spooled)}");
        await MailKitRelay();
        Console.WriteLine($"// MailKit: bytes on the wire equal the spooled bytes: {_sink.LastData.AsSpan().SequenceEqual(Spooled)}; "
            + $"Bcc kept: {Encoding.UTF8.GetString(_sink.LastData).Contains("Bcc:", StringComparison.Ordinal)}; {_sink.LastData.Length} bytes vs {Spooled.Length}");
    }

    [Benchmark(Baseline = true)]
    public Task Ours() => _ours.SendAsync("a@upstream.test", Recipients, Spooled, CancellationToken.None);

    [Benchmark]
    public async Task MailKitRelay()
    {
        var message = MimeMessage.Load(new MemoryStream(Spooled, writable: false));
        await _mailkit.SendAsync(message, MailboxAddress.Parse("a@upstream.test"), [MailboxAddress.Parse("b@dest.test")]);
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        await _ours.QuitAsync();
        await _mailkit.DisconnectAsync(quit: true);
        _mailkit.Dispose();
        _sink.Dispose();
    }

    /// <summary>Accepts everything with PIPELINING and 8BITMIME; keeps the last message's data, unstuffed, as bytes.</summary>
    private sealed class WireSink : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

        public WireSink()
        {
            _listener.Start();
            _ = AcceptAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
        public byte[] LastData { get; private set; } = [];

        private async Task AcceptAsync()
        {
            while (true)
            {
                Socket client;
                try { client = await _listener.AcceptSocketAsync(); }
                catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
                _ = ServeAsync(client);
            }
        }

        private async Task ServeAsync(Socket client)
        {
            using var stream = new NetworkStream(client, ownsSocket: true);
            var reader = System.IO.Pipelines.PipeReader.Create(stream);
            async Task Say(string s) => await stream.WriteAsync(Encoding.ASCII.GetBytes(s));
            await Say("220 sink ESMTP\r\n");
            var data = new MemoryStream();
            var inData = false;
            while (true)
            {
                var read = await reader.ReadAsync();
                var buffer = read.Buffer;
                var replies = new StringBuilder();
                while (buffer.PositionOf((byte)'\n') is { } lf)
                {
                    var line = buffer.Slice(0, buffer.GetPosition(1, lf)).ToArray();
                    buffer = buffer.Slice(buffer.GetPosition(1, lf));
                    if (inData)
                    {
                        if (line.AsSpan().SequenceEqual(".\r\n"u8)) { inData = false; LastData = data.ToArray(); replies.Append("250 ok\r\n"); }
                        else data.Write(line, line[0] == '.' ? 1 : 0, line.Length - (line[0] == '.' ? 1 : 0));
                        continue;
                    }
                    var verb = Encoding.ASCII.GetString(line, 0, Math.Min(4, line.Length)).ToUpperInvariant();
                    if (verb == "EHLO") replies.Append("250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
                    else if (verb == "DATA") { inData = true; data.SetLength(0); replies.Append("354 go\r\n"); }
                    else if (verb == "QUIT") { await Say("221 bye\r\n"); return; }
                    else replies.Append("250 ok\r\n");
                }
                reader.AdvanceTo(buffer.Start, read.Buffer.End);
                if (replies.Length > 0) await Say(replies.ToString());
                if (read.IsCompleted) return;
            }
        }

        public void Dispose() => _listener.Stop();
    }
}
