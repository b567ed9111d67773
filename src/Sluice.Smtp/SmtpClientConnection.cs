// The client side of one SMTP connection, shared by remote delivery and `sluice inject`.
// Hand-written rather than MailKit because relayed bytes must go out exactly as stored (DKIM),
// with pipelining and per-recipient replies, on the hot delivery path.
using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;

namespace Sluice.Smtp;

public sealed class SmtpClientConnection : IAsyncDisposable
{
    private const int MaxReplyLineBytes = 4096;
    /// <summary>421: service not available, the server is closing the channel (RFC 5321 §3.8).</summary>
    public const int ClosingCode = 421;
    private readonly Socket _socket;
    private Stream _stream;
    private PipeReader _reader;
    /// <summary>Message data goes out in writes of at most this, each bounded by <see cref="SmtpTimeouts.DataBlock"/>.</summary>
    private const int DataBlockBytes = 64 * 1024;
    private readonly SmtpTimeouts _timeouts;
    private IDisposable? _held;
    private readonly PooledBufferWriter _out = new(8192);

    private SmtpClientConnection(Socket socket, SmtpTimeouts timeouts, string peer)
    {
        Peer = peer;
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = ReaderOver(_stream);
        _timeouts = timeouts;
    }

    /// <summary>Who this connection is with, for logs and bounces: "mx.example[192.0.2.1]:25" or "host:port".</summary>
    public string Peer { get; }
    public bool Pipelining { get; private set; }
    /// <summary>The server offers RFC 3207 STARTTLS (never true once the session is encrypted).</summary>
    public bool StartTls { get; private set; }
    /// <summary>The session runs over TLS since a successful <see cref="StartTlsAsync"/>.</summary>
    public bool Secure => _stream is SslStream;
    public long? MaxSize { get; private set; }
    /// <summary>The server takes RFC 3461 NOTIFY, ORCPT, RET and ENVID.</summary>
    public bool Dsn { get; private set; }
    /// <summary>The server takes the RFC 6531 SMTPUTF8 parameter.</summary>
    public bool SmtpUtf8 { get; private set; }
    /// <summary>The server takes the RFC 6152 BODY=8BITMIME parameter.</summary>
    public bool EightBitMime { get; private set; }
    public int MessagesSent { get; private set; }
    /// <summary>False once a protocol or I/O error has made the connection unusable.</summary>
    public bool Usable { get; private set; } = true;

    /// <summary>Connects and reads the greeting; throws <see cref="SmtpException"/> on a non-220 greeting.</summary>
    /// <param name="peer">How to name the peer (e.g. the MX host's name with its address); null: "host:port".</param>
    public static async Task<SmtpClientConnection> ConnectAsync(string host, int port, SmtpTimeouts timeouts, CancellationToken ct, string? peer = null)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using (var connect = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            connect.CancelAfter(timeouts.Connect);
            try
            {
                await socket.ConnectAsync(host, port, connect.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                socket.Dispose();
                throw new SmtpException($"connect to {host}:{port} timed out after {timeouts.Connect.TotalSeconds:0}s", transient: true);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                throw new SmtpException($"connect to {host}:{port} failed: {e.Message}", transient: true);
            }
        }
        var conn = new SmtpClientConnection(socket, timeouts, peer ?? $"{host}:{port}");
        SmtpReply greeting;
        try
        {
            greeting = await conn.ReadReplyAsync("greeting", timeouts.Greeting, ct).ConfigureAwait(false);
        }
        catch
        {
            await conn.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        if (greeting.Code != 220)
        {
            await conn.DisposeAsync().ConfigureAwait(false);
            throw new SmtpException($"{host}:{port} greeted with {greeting}", transient: greeting.Code < 500);
        }
        return conn;
    }

    /// <summary>EHLO, falling back to HELO for a server that does not know it (RFC 5321 §3.2).</summary>
    public async Task HelloAsync(string hostname, CancellationToken ct)
    {
        (Pipelining, StartTls, Dsn, SmtpUtf8, EightBitMime, MaxSize) = (false, false, false, false, false, null);
        var reply = await CommandAsync($"EHLO {hostname}", ct).ConfigureAwait(false);
        if (reply.Code == ClosingCode) throw Broken($"EHLO rejected: {reply}");
        if (reply.Code == 250)
        {
            foreach (var line in reply.Lines.Skip(1))
            {
                var word = line.Split(' ', 2);
                switch (word[0].ToUpperInvariant())
                {
                    case "PIPELINING": Pipelining = true; break;
                    case "STARTTLS": StartTls = !Secure; break;
                    case "DSN": Dsn = true; break;
                    case "SMTPUTF8": SmtpUtf8 = true; break;
                    case "8BITMIME": EightBitMime = true; break;
                    case "SIZE" when word.Length > 1 && long.TryParse(word[1], out var size) && size > 0: MaxSize = size; break;
                }
            }
            return;
        }
        reply = await CommandAsync($"HELO {hostname}", ct).ConfigureAwait(false);
        if (reply.Code != 250) throw new SmtpException($"HELO rejected: {reply}", reply.IsTransient);
    }

    /// <summary>
    /// RFC 3207: STARTTLS and the TLS handshake; the caller says EHLO again after (§4.2: what the server
    /// offered before is forgotten). A refusal leaves the plaintext session usable; a failed handshake does not.
    /// </summary>
    /// <param name="targetHost">The name the certificate must hold (SNI too), e.g. the MX host's name.</param>
    /// <param name="verify">Check the certificate's chain and name; false takes any certificate (opportunistic TLS).</param>
    public async Task StartTlsAsync(string targetHost, bool verify, CancellationToken ct)
    {
        var reply = await CommandAsync("STARTTLS", ct).ConfigureAwait(false);
        if (reply.Code != 220) throw new SmtpException($"STARTTLS refused: {reply}", transient: true);
        // Bytes already after the 220 were sent in plaintext before the handshake: a command-injection attempt (CVE-2011-0411).
        if (_reader.TryRead(out var early))
        {
            _reader.AdvanceTo(early.Buffer.Start);
            if (!early.Buffer.IsEmpty) throw Broken("the server sent data after its STARTTLS reply, before the handshake");
        }
        await _reader.CompleteAsync().ConfigureAwait(false);
        var tls = new SslStream(_stream, leaveInnerStreamOpen: true);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_timeouts.Command);
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = targetHost,
                RemoteCertificateValidationCallback = verify ? null : static (_, _, _, _) => true,
            }, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw Broken($"TLS handshake with {targetHost} failed: {(e is OperationCanceledException ? "timed out" : e.Message)}");
        }
        // From here on every byte goes through TLS; the socket itself is closed by DisposeAsync.
        (_stream, _reader, StartTls) = (tls, ReaderOver(tls), false);
    }

    /// <summary>One mail transaction without extra MAIL or RCPT parameters (SIZE is added when offered).</summary>
    public Task<SmtpReply[]> SendAsync(string sender, IReadOnlyList<string> recipients, ReadOnlyMemory<byte> message, CancellationToken ct) =>
        SendAsync(sender, "", recipients, null, message, ct);

    /// <summary>
    /// One mail transaction. Returns the reply for each recipient: its RCPT reply if that failed,
    /// else the final reply to the data (or the MAIL reply if that failed).
    /// </summary>
    /// <param name="mailParameters">Appended to MAIL after SIZE, space-separated ("" for none); the caller checks they were offered.</param>
    /// <param name="recipientParameters">Appended to each RCPT, in the order of <paramref name="recipients"/>; null for none.</param>
    public async Task<SmtpReply[]> SendAsync(string sender, string mailParameters, IReadOnlyList<string> recipients,
        IReadOnlyList<string>? recipientParameters, ReadOnlyMemory<byte> message, CancellationToken ct)
    {
        var results = new SmtpReply[recipients.Count];
        var mail = $"MAIL FROM:<{sender}>" + (MaxSize is null ? "" : $" SIZE={message.Length}") + (mailParameters.Length > 0 ? " " + mailParameters : "");
        string Rcpt(int i) => $"RCPT TO:<{recipients[i]}>" + (recipientParameters?[i] is { Length: > 0 } p ? " " + p : "");
        SmtpReply mailReply;
        var rcptOk = new bool[recipients.Count];
        SmtpReply? dataReply = null;
        if (Pipelining)
        {
            // RFC 2920: MAIL, every RCPT and DATA go in one write; replies come back in order.
            Append(mail);
            for (int i = 0; i < recipients.Count; i++) Append(Rcpt(i));
            Append("DATA");
            await FlushAsync(_timeouts.Mail, ct).ConfigureAwait(false);
            mailReply = await ReadReplyAsync("reply to MAIL", _timeouts.Mail, ct).ConfigureAwait(false);
            if (mailReply.Code == ClosingCode) return ClosedWith(mailReply, results);
            for (int i = 0; i < recipients.Count; i++)
            {
                results[i] = await ReadReplyAsync("reply to RCPT", _timeouts.Rcpt, ct).ConfigureAwait(false);
                if (results[i].Code == ClosingCode) return ClosedWith(results[i], results);
                rcptOk[i] = results[i].Code is 250 or 251;
            }
            dataReply = await ReadReplyAsync("reply to DATA", _timeouts.DataInit, ct).ConfigureAwait(false);
        }
        else
        {
            mailReply = await CommandAsync(mail, "reply to MAIL", _timeouts.Mail, ct).ConfigureAwait(false);
            if (mailReply.Code == 250)
            {
                for (int i = 0; i < recipients.Count; i++)
                {
                    results[i] = await CommandAsync(Rcpt(i), "reply to RCPT", _timeouts.Rcpt, ct).ConfigureAwait(false);
                    if (results[i].Code == ClosingCode) return ClosedWith(results[i], results);
                    rcptOk[i] = results[i].Code is 250 or 251;
                }
                if (rcptOk.Any(ok => ok)) dataReply = await CommandAsync("DATA", "reply to DATA", _timeouts.DataInit, ct).ConfigureAwait(false);
            }
        }
        if (mailReply.Code == ClosingCode) return ClosedWith(mailReply, results);
        if (dataReply?.Code == ClosingCode) return ClosedWith(dataReply, results);
        if (mailReply.Code != 250)
        {
            Array.Fill(results, mailReply);
            await ResetAsync(ct).ConfigureAwait(false);
            return results;
        }
        if (dataReply is null || dataReply.Code != 354)
        {
            if (dataReply is not null)
                for (int i = 0; i < results.Length; i++) if (rcptOk[i]) results[i] = dataReply;
            await ResetAsync(ct).ConfigureAwait(false);
            return results;
        }
        DotStuffing.WriteStuffed(message.Span, _out);
        await FlushAsync(_timeouts.DataBlock, ct).ConfigureAwait(false);
        var final = await ReadReplyAsync("reply to the end of data", _timeouts.DataTerm, ct).ConfigureAwait(false);
        for (int i = 0; i < results.Length; i++) if (rcptOk[i]) results[i] = final;
        if (final.Code == ClosingCode) Usable = false;
        else MessagesSent++;
        return results;
    }

    /// <summary>RFC 5321 §3.8: the server is closing the channel; the transaction is over for every recipient.</summary>
    private SmtpReply[] ClosedWith(SmtpReply reply, SmtpReply[] results)
    {
        Usable = false;
        Array.Fill(results, reply);
        return results;
    }

    public async Task ResetAsync(CancellationToken ct)
    {
        var reply = await CommandAsync("RSET", ct).ConfigureAwait(false);
        if (reply.Code != 250) Usable = false;
    }

    /// <summary>Any command but those of a mail transaction, bounded by <see cref="SmtpTimeouts.Command"/>.</summary>
    public Task<SmtpReply> CommandAsync(string command, CancellationToken ct) => CommandAsync(command, $"reply to {Verb(command)}", _timeouts.Command, ct);

    private async Task<SmtpReply> CommandAsync(string command, string awaiting, TimeSpan timeout, CancellationToken ct)
    {
        Append(command);
        await FlushAsync(timeout, ct).ConfigureAwait(false);
        return await ReadReplyAsync(awaiting, timeout, ct).ConfigureAwait(false);
    }

    private static string Verb(string command) => command.Split(' ', 2)[0];

    /// <summary>QUIT politely, then close; never throws.</summary>
    public async Task QuitAsync()
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            if (Usable) await CommandAsync("QUIT", cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SmtpException or IOException or OperationCanceledException or SocketException)
        {
            // The peer may have gone already; the connection is closed either way.
        }
        await DisposeAsync().ConfigureAwait(false);
    }

    private void Append(string command) => SmtpLine.Write(_out, command);

    /// <summary>Sends what was appended, in blocks of at most <see cref="DataBlockBytes"/>, each given <paramref name="timeout"/> (§4.5.3.2.5).</summary>
    private async Task FlushAsync(TimeSpan timeout, CancellationToken ct)
    {
        try
        {
            using var block = CancellationTokenSource.CreateLinkedTokenSource(ct);
            for (var rest = _out.WrittenMemory; !rest.IsEmpty; rest = rest[Math.Min(rest.Length, DataBlockBytes)..])
            {
                block.CancelAfter(timeout);
                await _stream.WriteAsync(rest[..Math.Min(rest.Length, DataBlockBytes)], block.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            Usable = false;
            throw new SmtpException($"write failed: {e.Message}", transient: true);
        }
        finally
        {
            _out.Reset();
        }
    }

    /// <summary>Reads one (possibly multi-line) reply, bounded in line length and time; <paramref name="awaiting"/> names it in errors.</summary>
    private async Task<SmtpReply> ReadReplyAsync(string awaiting, TimeSpan wait, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(wait);
        var lines = new List<string>(1);
        try
        {
            while (true)
            {
                var result = await _reader.ReadAsync(timeout.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                while (TryReadLine(ref buffer, out var line))
                {
                    if (line.Length < 3 || !int.TryParse(line.AsSpan(0, 3), out var code) || code < 200 || code > 599)
                        throw Broken($"malformed reply \"{line}\"");
                    lines.Add(line.Length > 4 ? line[4..] : "");
                    if (line.Length == 3 || line[3] == ' ')
                    {
                        _reader.AdvanceTo(buffer.Start);
                        return new SmtpReply(code, lines);
                    }
                }
                if (buffer.Length > MaxReplyLineBytes) throw Broken("reply line too long");
                if (result.IsCompleted) throw Broken("connection closed by peer");
                _reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw Broken($"no {awaiting} within {wait.TotalSeconds:0.#}s");
        }
        catch (IOException e)
        {
            throw Broken(e.Message);
        }
    }

    private SmtpException Broken(string why)
    {
        Usable = false;
        return new SmtpException(why, transient: true);
    }

    /// <summary>
    /// Replies are read through a pipe that leaves the stream open: STARTTLS swaps the stream under it. Zero-byte
    /// reads: a session waiting for a reply (up to 10 minutes after the final dot) holds no buffer until it arrives.
    /// </summary>
    private static PipeReader ReaderOver(Stream stream) =>
        PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true, useZeroByteReads: true));

    private static bool TryReadLine(ref ReadOnlySequence<byte> buffer, out string line)
    {
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> bytes, (byte)'\n'))
        {
            line = "";
            return false;
        }
        line = Encoding.UTF8.GetString(bytes).TrimEnd('\r');
        buffer = buffer.Slice(reader.Position);
        return true;
    }

    /// <summary>Something held for as long as the connection is open (e.g. a descriptor budget's slot), given back once when it closes.</summary>
    public void ReleaseOnClose(IDisposable held) => _held = held;

    public async ValueTask DisposeAsync()
    {
        Usable = false;
        await _reader.CompleteAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
        _socket.Dispose();
        Interlocked.Exchange(ref _held, null)?.Dispose();
    }
}

/// <summary>A failed SMTP exchange; <see cref="Transient"/> says whether trying again later may help.</summary>
public sealed class SmtpException(string message, bool transient) : Exception(message)
{
    public bool Transient { get; } = transient;
}
