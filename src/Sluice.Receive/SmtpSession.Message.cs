// DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030): reading the message, the trace header, and the
// one place a message is handed to the queue. End of data is CRLF "." CRLF and nothing else.
using System.Buffers;
using System.Text;

namespace Sluice.Receive;

public sealed partial class SmtpSession
{
    private enum InputMode { Command, Data, Chunk }

    private readonly MessageContent _content;
    private InputMode _mode;
    private bool _dataAtLineStart;
    // BDAT: bytes of the current chunk still to read, whether it is the last, what to answer when a
    // chunk cannot be taken (it is read all the same, to stay in step), and whether a chunked message is open.
    private long _chunkRemaining, _chunkSize;
    private bool _chunkLast, _chunking, _chunkFailed;
    private string? _chunkRefusal;

    private void Data(string arg)
    {
        if (arg.Length > 0) { Error("501 5.5.4 Syntax: DATA"); return; }
        if (_sender is null) { Error("503 5.5.1 Error: need MAIL command"); return; }
        if (_chunking) { Error("503 5.5.1 Error: DATA in the middle of BDAT"); return; }
        if (_recipients.Count == 0) { Error("554 5.5.1 Error: no valid recipients"); return; }
        StartMessage();
        _mode = InputMode.Data;
        _dataAtLineStart = true;
        Reply("354 End data with <CR><LF>.<CR><LF>");
    }

    private void Bdat(string arg)
    {
        var parts = arg.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length is < 1 or > 2 || !long.TryParse(parts[0], System.Globalization.NumberStyles.None, null, out var size)
            || (parts.Length == 2 && !parts[1].Equals("LAST", StringComparison.OrdinalIgnoreCase)))
        {
            Error("501 5.5.4 Syntax: BDAT chunk-size [LAST]");
            return;
        }
        _mode = InputMode.Chunk;
        _chunkRemaining = _chunkSize = size;
        _chunkLast = parts.Length == 2;
        _chunkRefusal = _sender is null ? "503 5.5.1 Error: need MAIL command"
            : _recipients.Count == 0 ? "554 5.5.1 Error: no valid recipients"
            : _chunkFailed ? "503 5.5.1 Error: this BDAT transaction has failed; send RSET"
            : null;
        if (_chunkRefusal is null && !_chunking)
        {
            StartMessage();
            _chunking = true;
        }
    }

    /// <summary>The Received header is not written yet: it names the queue id, which the queue gives at acceptance.</summary>
    private void StartMessage() => _content.Reset();

    private void ResetMessage()
    {
        _chunking = _chunkFailed = false;
        _content.Reset();
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
                    if (rest.Length <= MessageContent.MaxLineOctets + 2) return false;
                    // Already longer than a line may be: pass it on (it gets refused) rather than buffer
                    // it; keep a last byte back in case it is the CR of a CRLF.
                    var part = rest.Slice(0, rest.Length - 1);
                    AppendData(part, _dataAtLineStart);
                    _dataAtLineStart = false;
                    reader.Advance(part.Length);
                    return false;
                }
                var crlf = line.Length > 0 && line.Slice(line.Length - 1).FirstSpan[0] == (byte)'\r';
                // RFC 5321 §4.1.1.4: only CRLF "." CRLF ends the data; a bare-LF variant must not (SMTP smuggling).
                if (_dataAtLineStart && crlf && line.Length == 2 && line.FirstSpan[0] == (byte)'.') return true;
                AppendData(line, _dataAtLineStart);
                _content.Append("\n"u8);
                _dataAtLineStart = crlf;
            }
        }
        finally
        {
            buffer = buffer.Slice(reader.Position);
        }
    }

    private void AppendData(ReadOnlySequence<byte> line, bool atLineStart)
    {
        if (atLineStart && line.Length > 0 && line.FirstSpan[0] == (byte)'.') line = line.Slice(1); // RFC 5321 §4.5.2
        foreach (var segment in line) _content.Append(segment.Span);
    }

    /// <summary>Consumes the current chunk's bytes; true once all have been read.</summary>
    private bool ReadChunk(ref ReadOnlySequence<byte> buffer)
    {
        var take = buffer.Slice(0, Math.Min(_chunkRemaining, buffer.Length));
        if (_chunkRefusal is null && !_chunkFailed)
            foreach (var segment in take) _content.Append(segment.Span);
        _chunkRemaining -= take.Length;
        buffer = buffer.Slice(take.End);
        return _chunkRemaining == 0;
    }

    private async Task FinishMessageAsync(CancellationToken ct)
    {
        _mode = InputMode.Command;
        await QueueMessageAsync(ct).ConfigureAwait(false);
        ResetTransaction();
    }

    private async Task FinishChunkAsync(CancellationToken ct)
    {
        _mode = InputMode.Command;
        if (_chunkRefusal is not null)
        {
            Error(_chunkRefusal);
        }
        else if (_content.Problem == ContentProblem.TooBig && !_chunkFailed)
        {
            // Said at once, so the client stops sending chunks (RFC 3030 §2).
            _chunkFailed = true;
            Error(RefusalFor(ContentProblem.TooBig));
        }
        else if (_chunkLast)
        {
            await QueueMessageAsync(ct).ConfigureAwait(false);
            ResetTransaction();
            return;
        }
        else
        {
            Reply($"250 2.0.0 {_chunkSize} octets received");
            return;
        }
        if (_chunkLast && _chunking) ResetTransaction();
    }

    /// <summary>Queues the message if its content passed every check; the 250 is sent only once it is durable.</summary>
    private async Task QueueMessageAsync(CancellationToken ct)
    {
        _content.Complete();
        if (_content.Problem != ContentProblem.None)
        {
            Error(RefusalFor(_content.Problem));
            return;
        }
        if (LoopRefusal(_content.Written.Span) is { } loop)
        {
            Error(loop);
            return;
        }
        try
        {
            var queued = await AcceptAsync(_content.Written, ct).ConfigureAwait(false);
            Reply($"250 2.0.0 Ok: queued as {string.Join(' ', queued.Select(m => m.Id))}");
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or UnauthorizedAccessException)
        {
            // Not durable, so not accepted: the client keeps the message and retries.
            Reply($"451 4.3.0 Error: queue file write error ({e.Message})");
        }
    }

    private string RefusalFor(ContentProblem problem) => problem switch
    {
        ContentProblem.TooBig => $"552 5.3.4 Message size exceeds fixed limit of {_policy.MaxMessageBytes} bytes",
        ContentProblem.BareLineFeed => "550 5.6.0 Message contains bare LF line endings (RFC 5321 §2.3.8); use CRLF",
        ContentProblem.BareCarriageReturn => "550 5.6.0 Message contains a bare CR (RFC 5321 §2.3.8); use CRLF",
        ContentProblem.Nul => "550 5.6.0 Message contains NUL characters",
        ContentProblem.LineTooLong => $"550 5.6.0 Message has a line longer than {MessageContent.MaxLineOctets} octets (RFC 5321 §4.5.3.1.6)",
        _ => $"554 5.4.6 Too many hops: more than {MessageContent.MaxReceivedHeaders} Received headers (mail loop)",
    };

    /// <summary>
    /// RFC 5321 §4.4 trace header, with TLS and AUTH noted and the RFC 3848 / 6531 protocol name; its id is the
    /// queue id, which the log's "new msg ID" and `sluice queue show ID` use.
    /// </summary>
    private ReadOnlyMemory<byte> ReceivedHeader(string queueId)
    {
        var tls = _transport.TlsDescription;
        var protocol = !_esmtp ? "SMTP"
            : (_smtpUtf8 ? "UTF8SMTP" : "ESMTP") + (tls is null ? "" : "S") + (_authUser is null ? "" : "A");
        var sb = new StringBuilder(256);
        sb.Append("Received: from ").Append(_helo).Append(" (").Append(ClientLiteral).Append(")\r\n");
        if (tls is not null) sb.Append("\t(using ").Append(tls).Append(")\r\n");
        if (_authUser is not null && !_policy.HideAuthenticatedUser) sb.Append("\t(authenticated as ").Append(CommentSafe(_authUser)).Append(")\r\n");
        sb.Append("\tby ").Append(_policy.Hostname).Append(" (Sluice) with ").Append(protocol).Append(" id ").Append(queueId);
        if (_recipients.Count == 1) sb.Append("\r\n\tfor <").Append(_recipients[0]).Append('>');
        sb.Append(";\r\n\t").Append(MimeKit.Utils.DateUtils.FormatDate(_context.Time.GetUtcNow())).Append("\r\n");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>A name inside a header comment (RFC 5322 §3.2.2) must not close or nest it.</summary>
    private static string CommentSafe(string s) => string.Concat(s.Select(c => c is '(' or ')' or '\\' ? '_' : c));
}
