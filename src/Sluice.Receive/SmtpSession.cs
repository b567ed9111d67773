// One SMTP server session (RFC 5321) over any duplex pipe, so it runs the same over a socket or
// in a test. Replies are flushed only when no more complete input is buffered, which is what makes
// PIPELINING (RFC 2920) work: a batch of commands gets its replies in one write.
using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Smtp;

namespace Sluice.Receive;

public sealed partial class SmtpSession
{
    /// <summary>RFC 5321 §4.5.3.1.4: a command line is at most 512 octets with its CRLF.</summary>
    private const int MaxCommandLine = 512;
    /// <summary>Replies held back for a pipelined batch are written out once they pass this.</summary>
    private const int MaxUnflushedReplies = 16 * 1024;

    private readonly SessionContext _context;
    private readonly ReceivePolicy _policy;
    private readonly IPEndPoint? _remote;
    private readonly long _id;
    private SmtpTransport _transport = null!;
    private PipeWriter _output = null!;
    private string? _helo;
    private bool _esmtp;
    private string? _authUser;
    private int _errors;
    private bool _quit, _discardingLongLine, _startTls;

    public SmtpSession(SessionContext context, IPEndPoint? remote, long id)
    {
        _context = context;
        _policy = context.Policy;
        _remote = remote;
        _id = id;
        _content = new MessageContent(_policy.MaxMessageBytes);
    }

    /// <summary>A plain session over pipes, as the tests and benchmarks drive it.</summary>
    public SmtpSession(ReceivePolicy policy, Sluice.Queue.IMessageAcceptor acceptor, TimeProvider time, IPEndPoint? remote, long id)
        : this(new SessionContext { Policy = policy, Acceptor = acceptor, Time = time }, remote, id)
    {
    }

    public Task RunAsync(IDuplexPipe pipe, CancellationToken ct) => RunAsync(new SmtpTransport(pipe), ct);

    public async Task RunAsync(SmtpTransport transport, CancellationToken ct)
    {
        _transport = transport;
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // One timer per session, re-armed per read, on the injected clock.
        using var timer = _context.Time.CreateTimer(_ => CancelIdle(idle), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        try
        {
            if (_context.Role == SmtpRole.Submissions)
            {
                // RFC 8314 §3.3: TLS from the first byte; the greeting comes over it.
                timer.Change(_policy.CommandTimeout, Timeout.InfiniteTimeSpan);
                if (!await TryStartTlsAsync(idle.Token).ConfigureAwait(false)) return;
            }
            _output = _transport.Output;
            Reply($"220 {_policy.Hostname} ESMTP Sluice");
            await _output.FlushAsync(ct).ConfigureAwait(false);
            while (!_quit)
            {
                timer.Change(_context.UnderStress() ? _policy.StressCommandTimeout : _policy.CommandTimeout, Timeout.InfiniteTimeSpan);
                var input = _transport.Input;
                var result = await input.ReadAsync(idle.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                var more = true;
                while (more && !_quit && !_startTls) (more, buffer) = await ProcessAsync(buffer, ct).ConfigureAwait(false);
                if (_startTls)
                {
                    _startTls = false;
                    input.AdvanceTo(buffer.End);
                    await _output.FlushAsync(ct).ConfigureAwait(false);
                    if (!await TryStartTlsAsync(idle.Token).ConfigureAwait(false)) return;
                    _output = _transport.Output;
                    continue;
                }
                input.AdvanceTo(buffer.Start, buffer.End);
                await _output.FlushAsync(ct).ConfigureAwait(false);
                if (result.IsCompleted) break;
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && _output is not null)
        {
            Reply($"421 4.4.2 {_policy.Hostname} Error: timeout exceeded");
            await _output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            await _transport.Input.CompleteAsync().ConfigureAwait(false);
            await _transport.Output.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>A timer callback may still run as the session ends; it must not throw on a thread-pool thread.</summary>
    private static void CancelIdle(CancellationTokenSource idle)
    {
        try
        {
            idle.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// Handles one complete unit of input (a command, the data, a chunk) if the buffer holds it. Returns
    /// what is left either way (data is consumed as it comes), and false when more input is needed.
    /// </summary>
    private async ValueTask<(bool, ReadOnlySequence<byte>)> ProcessAsync(ReadOnlySequence<byte> buffer, CancellationToken ct)
    {
        switch (_mode)
        {
            case InputMode.Data:
                if (!ReadData(ref buffer)) return (false, buffer);
                await FinishMessageAsync(ct).ConfigureAwait(false);
                return (true, buffer);
            case InputMode.Chunk:
                if (!ReadChunk(ref buffer)) return (false, buffer);
                await FinishChunkAsync(ct).ConfigureAwait(false);
                return (true, buffer);
            default:
                if (!TryReadCommandLine(ref buffer, out var line)) return (false, buffer);
                if (line is not null) await HandleLineAsync(line).ConfigureAwait(false);
                if (_output.UnflushedBytes > MaxUnflushedReplies) await _output.FlushAsync(ct).ConfigureAwait(false);
                return (true, buffer);
        }
    }

    private async Task<bool> TryStartTlsAsync(CancellationToken ct)
    {
        try
        {
            await _transport.StartTlsAsync(_context.Certificate!, ct).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or OperationCanceledException)
        {
            _context.Log($"smtp: session {_id} from {_remote}: TLS handshake failed: {e.Message}");
            return false;
        }
    }

    /// <summary>
    /// Takes one command line off the buffer; false when no whole line is buffered yet. The line is null
    /// when it was refused (and already answered). LF ends a command line, with or without CR before it
    /// (as Postfix allows); a CR or NUL inside it never reaches a parser.
    /// </summary>
    private bool TryReadCommandLine(ref ReadOnlySequence<byte> buffer, out string? line)
    {
        line = null;
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> lineBytes, (byte)'\n'))
        {
            if (buffer.Length > MaxCommandLine)
            {
                // Drop what we have; the rest of the line is dropped when its LF arrives.
                if (!_discardingLongLine) Error("500 5.5.6 Command line too long (RFC 5321 §4.5.3.1.4)");
                _discardingLongLine = true;
                buffer = buffer.Slice(buffer.End);
            }
            return false;
        }
        buffer = buffer.Slice(reader.Position);
        if (_discardingLongLine)
        {
            _discardingLongLine = false;
            return true;
        }
        if (lineBytes.Length > MaxCommandLine - 1)
        {
            Error("500 5.5.6 Command line too long (RFC 5321 §4.5.3.1.4)");
            return true;
        }
        Span<byte> bytes = stackalloc byte[(int)lineBytes.Length];
        lineBytes.CopyTo(bytes);
        if (bytes.Length > 0 && bytes[^1] == (byte)'\r') bytes = bytes[..^1];
        if (bytes.IndexOfAny((byte)'\r', (byte)'\0') >= 0)
            Error("500 5.5.2 Error: bare CR or NUL in command line");
        else if (!System.Text.Unicode.Utf8.IsValid(bytes))
            Error("500 5.5.2 Error: command line is not valid UTF-8");
        else
            line = Encoding.UTF8.GetString(bytes);
        return true;
    }

    private async ValueTask HandleLineAsync(string line)
    {
        if (_authStep is not null)
        {
            await ContinueAuthAsync(line).ConfigureAwait(false);
            return;
        }
        var space = line.IndexOf(' ');
        var verb = (space < 0 ? line : line[..space]).ToUpperInvariant();
        var arg = space < 0 ? "" : line[(space + 1)..];
        switch (verb)
        {
            case "EHLO": Hello(arg, esmtp: true); break;
            case "HELO": Hello(arg, esmtp: false); break;
            case "STARTTLS": StartTls(arg); break;
            case "AUTH": await AuthAsync(arg).ConfigureAwait(false); break;
            case "MAIL": Mail(arg); break;
            case "RCPT": Rcpt(arg); break;
            case "DATA": Data(arg); break;
            case "BDAT": Bdat(arg); break;
            case "RSET": ResetTransaction(); Reply("250 2.0.0 Ok"); break;
            case "NOOP": Reply("250 2.0.0 Ok"); break;
            case "VRFY": Reply("252 2.5.0 Cannot verify the user, but will accept mail and try delivery"); break;
            case "EXPN": Error("502 5.5.1 Error: EXPN is not supported"); break;
            case "HELP": Reply("214 2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY"); break;
            case "QUIT":
                Reply($"221 2.0.0 {_policy.Hostname} closing connection");
                _quit = true;
                break;
            case "": Error("500 5.5.2 Error: empty command"); break;
            default: Error("502 5.5.2 Error: command not recognized"); break;
        }
    }

    private bool TlsOffered => _context.Certificate is not null && _transport.CanStartTls;
    private bool AuthOffered => _context.Users is not null && _transport.Tls is not null && _authUser is null;

    private void Hello(string arg, bool esmtp)
    {
        var name = arg.Trim();
        // The name goes into the Received header: printable ASCII only, no spaces (a CR would forge a header).
        if (name.Length == 0 || name.Length > 255 || name.Any(c => c is <= ' ' or > '~'))
        {
            Error($"501 5.5.4 Syntax: {(esmtp ? "EHLO" : "HELO")} hostname");
            return;
        }
        ResetTransaction();
        _helo = name;
        _esmtp = esmtp;
        if (!esmtp)
        {
            Reply($"250 {_policy.Hostname}");
            return;
        }
        Reply($"250-{_policy.Hostname}");
        Reply("250-PIPELINING");
        Reply($"250-SIZE {_policy.MaxMessageBytes}");
        Reply("250-8BITMIME");
        Reply("250-SMTPUTF8");
        Reply("250-DSN");
        Reply("250-CHUNKING");
        if (TlsOffered) Reply("250-STARTTLS");
        if (AuthOffered) Reply("250-AUTH PLAIN LOGIN");
        Reply("250 ENHANCEDSTATUSCODES");
    }

    private void StartTls(string arg)
    {
        if (arg.Length > 0) { Error("501 5.5.4 Syntax: STARTTLS"); return; }
        if (_transport.Tls is not null) { Error("503 5.5.1 Error: TLS already active"); return; }
        if (!TlsOffered) { Error("502 5.5.1 Error: STARTTLS is not offered"); return; }
        Reply("220 2.0.0 Ready to start TLS");
        // RFC 3207 §4.2: the session starts over; what was said before TLS is forgotten.
        _helo = null;
        _esmtp = false;
        ResetTransaction();
        _startTls = true;
    }

    private void Error(string reply)
    {
        Reply(reply);
        if (++_errors < _policy.MaxErrors) return;
        Reply($"421 4.7.0 {_policy.Hostname} Error: too many errors");
        _quit = true;
    }

    private void Reply(string line) => SmtpLine.Write(_output, line);

    /// <summary>"[192.0.2.1]" or "[IPv6:2001:db8::1]": RFC 5321 §4.1.3 address literal of the client.</summary>
    private string ClientLiteral => _remote?.Address is not { } a ? "unknown"
        : a.IsIPv4MappedToIPv6 || a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? $"[{(a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a)}]"
        : $"[IPv6:{a}]";
}
