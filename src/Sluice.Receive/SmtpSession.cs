// One SMTP server session (RFC 5321) over any duplex pipe, so it runs the same over a socket or
// in a test. Replies are flushed only when no more complete input is buffered, which is what makes
// PIPELINING (RFC 2920) work: a batch of commands gets its replies in one write.
using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Sluice.Queue;
using Sluice.Smtp;

namespace Sluice.Receive;

public sealed partial class SmtpSession(ReceivePolicy policy, IMessageAcceptor acceptor, TimeProvider time, IPEndPoint? remote, long id)
{
    /// <summary>RFC 5321 §4.5.3.1.4: a command line is at most 512 octets with its CRLF.</summary>
    private const int MaxCommandLine = 512;
    /// <summary>A text line longer than this is taken in pieces so a client cannot make us buffer it whole.</summary>
    private const int MaxBufferedDataLine = 64 * 1024;

    private ArrayBufferWriter<byte> _body = new(16 * 1024);
    private readonly List<string> _recipients = [];
    private PipeWriter _output = null!;
    private string? _helo;
    private bool _esmtp;
    private string? _sender;
    private int _errors;
    private int _transactions;
    private bool _inData, _dataAtLineStart, _dataBareLf, _dataTooBig, _discardingLongLine, _quit;

    public async Task RunAsync(IDuplexPipe transport, CancellationToken ct)
    {
        _output = transport.Output;
        var input = transport.Input;
        Reply($"220 {policy.Hostname} ESMTP Sluice");
        await _output.FlushAsync(ct).ConfigureAwait(false);
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
        try
        {
            while (!_quit)
            {
                idle.CancelAfter(policy.CommandTimeout);
                var result = await input.ReadAsync(idle.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                while (!_quit)
                {
                    if (_inData)
                    {
                        if (!ReadData(ref buffer)) break;
                        await FinishDataAsync(ct).ConfigureAwait(false);
                    }
                    else if (!ReadCommand(ref buffer))
                    {
                        break;
                    }
                }
                input.AdvanceTo(buffer.Start, buffer.End);
                await _output.FlushAsync(ct).ConfigureAwait(false);
                if (result.IsCompleted) break;
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            Reply($"421 4.4.2 {policy.Hostname} Error: timeout exceeded");
            await _output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            await input.CompleteAsync().ConfigureAwait(false);
            await _output.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Handles one command line if a whole one is buffered; false when more input is needed.</summary>
    private bool ReadCommand(ref ReadOnlySequence<byte> buffer)
    {
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
        var line = Encoding.UTF8.GetString(lineBytes).TrimEnd('\r');
        HandleCommand(line);
        return true;
    }

    private void HandleCommand(string line)
    {
        var space = line.IndexOf(' ');
        var verb = (space < 0 ? line : line[..space]).ToUpperInvariant();
        var arg = space < 0 ? "" : line[(space + 1)..];
        switch (verb)
        {
            case "EHLO": Hello(arg, esmtp: true); break;
            case "HELO": Hello(arg, esmtp: false); break;
            case "MAIL": Mail(arg); break;
            case "RCPT": Rcpt(arg); break;
            case "DATA": Data(arg); break;
            case "RSET": ResetTransaction(); Reply("250 2.0.0 Ok"); break;
            case "NOOP": Reply("250 2.0.0 Ok"); break;
            case "VRFY": Reply("252 2.5.0 Cannot verify the user, but will accept mail and try delivery"); break;
            case "HELP": Reply("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY"); break;
            case "QUIT":
                Reply($"221 2.0.0 {policy.Hostname} closing connection");
                _quit = true;
                break;
            case "": Error("500 5.5.2 Error: empty command"); break;
            default: Error("502 5.5.2 Error: command not recognized"); break;
        }
    }

    private void Hello(string arg, bool esmtp)
    {
        var name = arg.Trim();
        // The name goes into the Received header: no spaces or control characters (a CR would forge a header).
        if (name.Length == 0 || name.Any(c => c == ' ' || char.IsControl(c)))
        {
            Error($"501 5.5.4 Syntax: {(esmtp ? "EHLO" : "HELO")} hostname");
            return;
        }
        ResetTransaction();
        _helo = name;
        _esmtp = esmtp;
        if (!esmtp)
        {
            Reply($"250 {policy.Hostname}");
            return;
        }
        Reply($"250-{policy.Hostname}");
        Reply("250-PIPELINING");
        Reply($"250-SIZE {policy.MaxMessageBytes}");
        Reply("250-8BITMIME");
        Reply("250 ENHANCEDSTATUSCODES");
    }

    private void Mail(string arg)
    {
        if (_helo is null) { Error("503 5.5.1 Error: send HELO/EHLO first"); return; }
        if (_sender is not null) { Error("503 5.5.1 Error: nested MAIL command"); return; }
        if (!TryParsePath(arg, "FROM:", out var sender, out var parameters, out var problem)) { Error(problem); return; }
        if (sender.Length > 0 && !IsValidMailbox(sender, out problem)) { Error($"553 5.1.7 Bad sender address syntax: {problem}"); return; }
        foreach (var p in parameters)
        {
            var eq = p.IndexOf('=');
            var key = (eq < 0 ? p : p[..eq]).ToUpperInvariant();
            var value = eq < 0 ? "" : p[(eq + 1)..];
            if (key == "SIZE")
            {
                if (!long.TryParse(value, out var size) || size < 0) { Error("501 5.5.4 Bad SIZE parameter"); return; }
                if (size > policy.MaxMessageBytes) { Error($"552 5.3.4 Message size exceeds fixed limit of {policy.MaxMessageBytes} bytes"); return; }
            }
            else if (key == "BODY" && (value.Equals("7BIT", StringComparison.OrdinalIgnoreCase) || value.Equals("8BITMIME", StringComparison.OrdinalIgnoreCase)))
            {
                continue;
            }
            else
            {
                Error($"555 5.5.4 Unsupported MAIL parameter {key}");
                return;
            }
        }
        _sender = sender;
        Reply("250 2.1.0 Ok");
    }

    private void Rcpt(string arg)
    {
        if (_sender is null) { Error("503 5.5.1 Error: need MAIL command"); return; }
        if (!TryParsePath(arg, "TO:", out var rcpt, out var parameters, out var problem)) { Error(problem); return; }
        if (parameters.Count > 0) { Error($"555 5.5.4 Unsupported RCPT parameter {parameters[0]}"); return; }
        // RFC 5321 §4.5.1: the bare "Postmaster" must be accepted.
        if (rcpt.Equals("postmaster", StringComparison.OrdinalIgnoreCase)) rcpt = $"postmaster@{policy.PostmasterDomain}";
        if (!IsValidMailbox(rcpt, out problem)) { Error($"501 5.1.3 Bad recipient address syntax: {problem}"); return; }
        if (_recipients.Count >= policy.MaxRecipients) { Reply("452 4.5.3 Error: too many recipients"); return; }
        var domain = Sluice.Core.Mail.Address.DomainOf(rcpt);
        if (!policy.IsLocalDomain(domain) && !policy.IsRelayClient(remote?.Address))
        {
            Error($"554 5.7.1 <{rcpt}>: Relay access denied");
            return;
        }
        _recipients.Add(rcpt);
        Reply("250 2.1.5 Ok");
    }

    private void Data(string arg)
    {
        if (arg.Length > 0) { Error("501 5.5.4 Syntax: DATA"); return; }
        if (_sender is null) { Error("503 5.5.1 Error: need MAIL command"); return; }
        if (_recipients.Count == 0) { Error("554 5.5.1 Error: no valid recipients"); return; }
        _body.ResetWrittenCount();
        WriteReceivedHeader();
        _inData = true;
        _dataAtLineStart = true;
        _dataBareLf = _dataTooBig = false;
        Reply("354 End data with <CR><LF>.<CR><LF>");
    }

    /// <summary>Consumes message lines; true once the end-of-data line has been read.</summary>
    private bool ReadData(ref ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        try
        {
            while (true)
            {
                if (!reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n'))
                {
                    var rest = reader.UnreadSequence;
                    if (rest.Length <= MaxBufferedDataLine) return false;
                    // A very long line: keep all but a possible CR, and continue it next time.
                    var part = rest.Slice(0, rest.Length - 1);
                    AppendBody(part, _dataAtLineStart);
                    _dataAtLineStart = false;
                    reader.Advance(part.Length);
                    return false;
                }
                var crlf = line.Length > 0 && line.Slice(line.Length - 1).FirstSpan[0] == (byte)'\r';
                if (crlf) line = line.Slice(0, line.Length - 1);
                else _dataBareLf = true;
                // RFC 5321 §4.1.1.4: only CRLF "." CRLF ends the data; a bare-LF variant must not (SMTP smuggling).
                if (_dataAtLineStart && crlf && line.Length == 1 && line.FirstSpan[0] == (byte)'.') return true;
                AppendBody(line, _dataAtLineStart);
                Append("\r\n"u8);
                _dataAtLineStart = crlf;
            }
        }
        finally
        {
            buffer = buffer.Slice(reader.Position);
        }
    }

    private void AppendBody(ReadOnlySequence<byte> line, bool atLineStart)
    {
        if (atLineStart && line.Length > 0 && line.FirstSpan[0] == (byte)'.') line = line.Slice(1); // RFC 5321 §4.5.2
        foreach (var segment in line) Append(segment.Span);
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        if (_dataTooBig) return;
        if (_body.WrittenCount + bytes.Length > policy.MaxMessageBytes)
        {
            _dataTooBig = true;
            return;
        }
        _body.Write(bytes);
    }

    private async Task FinishDataAsync(CancellationToken ct)
    {
        _inData = false;
        if (_dataTooBig)
            Error($"552 5.3.4 Message size exceeds fixed limit of {policy.MaxMessageBytes} bytes");
        else if (_dataBareLf)
            Error("550 5.6.0 Message contains bare LF line endings (RFC 5321 §2.3.8); use CRLF");
        else
        {
            try
            {
                var message = await acceptor.AcceptAsync(new Sluice.Core.Mail.Envelope(_sender!, [.. _recipients]), _body.WrittenMemory, ct).ConfigureAwait(false);
                Reply($"250 2.0.0 Ok: queued as {message.Id}");
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or UnauthorizedAccessException)
            {
                // Not durable, so not accepted: the client keeps the message and retries.
                Reply($"451 4.3.0 Error: queue file write error ({e.Message})");
            }
        }
        ResetTransaction();
    }

    private void WriteReceivedHeader()
    {
        _transactions++;
        // RFC 5321 §4.4 TCP-info is an address literal; §4.1.3 spells an IPv6 one "IPv6:...".
        var ip = remote?.Address is not { } a ? "unknown"
            : a.IsIPv4MappedToIPv6 || a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? $"[{(a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a)}]"
            : $"[IPv6:{a}]";
        var protocol = _esmtp ? "ESMTP" : "SMTP";
        var forClause = _recipients.Count == 1 ? $"\r\n\tfor <{_recipients[0]}>" : "";
        var header = $"Received: from {_helo} ({ip})\r\n\tby {policy.Hostname} (Sluice) with {protocol} id {id}.{_transactions}{forClause};\r\n\t{MimeKit.Utils.DateUtils.FormatDate(time.GetUtcNow())}\r\n";
        _body.Write(Encoding.UTF8.GetBytes(header));
    }

    private void ResetTransaction()
    {
        _sender = null;
        _recipients.Clear();
        // A session that took one huge message must not hold its buffer for the small ones after it.
        if (_body.Capacity > 1 << 20) _body = new ArrayBufferWriter<byte>(16 * 1024);
        else _body.ResetWrittenCount();
    }

    private void Error(string reply)
    {
        Reply(reply);
        if (++_errors < policy.MaxErrors) return;
        Reply($"421 4.7.0 {policy.Hostname} Error: too many errors");
        _quit = true;
    }

    private void Reply(string line) => SmtpLine.Write(_output, line);
}
