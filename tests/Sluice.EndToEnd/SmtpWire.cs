// A bare SMTP client over a real socket, for what no polite client library will send: several
// commands in one write, STARTTLS with commands behind it, idle connections, the raw close.
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Sluice.EndToEnd;

internal sealed class SmtpWire : IAsyncDisposable
{
    private static readonly TimeSpan DefaultWait = TimeSpan.FromSeconds(30);

    private readonly TcpClient _tcp;
    private Stream _stream;
    private readonly byte[] _buffer = new byte[16 * 1024];
    private int _start, _end;

    private SmtpWire(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    /// <summary>Bytes received but not yet taken as a reply line.</summary>
    public int Buffered => _end - _start;

    public static async Task<SmtpWire> ConnectAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        try
        {
            await tcp.ConnectAsync(System.Net.IPAddress.Loopback, port);
            return new SmtpWire(tcp);
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }

    /// <summary>Connects and reads the greeting, which must be a 220.</summary>
    public static async Task<SmtpWire> OpenAsync(int port)
    {
        var wire = await ConnectAsync(port);
        var greeting = await wire.ReadReplyAsync();
        if (!greeting.StartsWith("220 ", StringComparison.Ordinal))
        {
            await wire.DisposeAsync();
            throw new InvalidOperationException("expected a 220 greeting, got: " + greeting);
        }
        return wire;
    }

    /// <summary>Writes <paramref name="text"/> exactly as given, in one write.</summary>
    public async Task WriteAsync(string text)
    {
        await _stream.WriteAsync(Encoding.UTF8.GetBytes(text));
        await _stream.FlushAsync();
    }

    /// <summary>Sends one command line and returns its whole reply.</summary>
    public async Task<string> CommandAsync(string line)
    {
        await WriteAsync(line + "\r\n");
        return await ReadReplyAsync();
    }

    /// <summary>One reply, all its lines joined with "\n"; throws if the connection closes first.</summary>
    public async Task<string> ReadReplyAsync(TimeSpan? wait = null)
    {
        using var cts = new CancellationTokenSource(wait ?? DefaultWait);
        var lines = new List<string>();
        while (true)
        {
            var line = await ReadLineAsync(cts.Token) ?? throw new EndOfStreamException("connection closed; reply so far: " + string.Join("\n", lines));
            lines.Add(line);
            // "250-..." continues a reply; "250 ..." or a bare "250" ends it (RFC 5321 §4.2.1).
            if (line.Length < 4 || line[3] != '-') return string.Join("\n", lines);
        }
    }

    /// <summary>Reads until the server closes the connection; returns everything it said before that.</summary>
    public async Task<string> ReadToCloseAsync(TimeSpan? wait = null)
    {
        using var cts = new CancellationTokenSource(wait ?? DefaultWait);
        var text = new StringBuilder(Encoding.Latin1.GetString(_buffer, _start, _end - _start));
        _start = _end = 0;
        try
        {
            int n;
            while ((n = await _stream.ReadAsync(_buffer, cts.Token)) > 0) text.Append(Encoding.Latin1.GetString(_buffer, 0, n));
        }
        catch (IOException)
        {
            // A reset is a close too.
        }
        return text.ToString();
    }

    /// <summary>
    /// Layers TLS over the connection, trusting only <paramref name="trusted"/> and requiring the
    /// server name to be <paramref name="host"/>. Whatever plaintext was buffered is an error.
    /// </summary>
    public async Task StartTlsAsync(X509Certificate2 trusted, string host)
    {
        if (Buffered != 0) throw new InvalidOperationException($"{Buffered} plaintext bytes were received after the STARTTLS reply");
        var tls = new SslStream(_stream, leaveInnerStreamOpen: false);
        await tls.AuthenticateAsClientAsync(ClientOptions(trusted, host));
        _stream = tls;
    }

    public static SslClientAuthenticationOptions ClientOptions(X509Certificate2 trusted, string host)
    {
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.Add(trusted);
        return new SslClientAuthenticationOptions { TargetHost = host, CertificateChainPolicy = policy };
    }

    private async Task<string?> ReadLineAsync(CancellationToken ct)
    {
        while (true)
        {
            var lf = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (lf >= 0)
            {
                var line = Encoding.UTF8.GetString(_buffer, _start, lf - _start).TrimEnd('\r');
                _start = lf + 1;
                return line;
            }
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            if (_end == _buffer.Length) throw new InvalidDataException("reply line longer than the buffer");
            var n = await _stream.ReadAsync(_buffer.AsMemory(_end), ct);
            if (n == 0) return null;
            _end += n;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _tcp.Dispose();
    }
}
