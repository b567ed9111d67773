// The bytes of one message as DATA or BDAT deliver them (already un-dot-stuffed), with the checks
// that decide whether it may be queued. Hand-written because it sees every byte received: it jumps
// from line end to line end with a vectorised search instead of looking at each byte.
using System.Buffers;

namespace Sluice.Receive;

/// <summary>Why content is refused; the first problem found wins.</summary>
internal enum ContentProblem
{
    None,
    TooBig,
    BareLineFeed,
    BareCarriageReturn,
    Nul,
    LineTooLong,
    TooManyHops,
}

internal sealed class MessageContent(long maxBytes)
{
    /// <summary>RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets with its CRLF.</summary>
    public const int MaxLineOctets = 998;
    /// <summary>More trace headers than this means a mail loop (RFC 5321 §6.3).</summary>
    public const int MaxReceivedHeaders = 100;
    private const int InitialCapacity = 16 * 1024;
    private static readonly SearchValues<byte> LineBytes = SearchValues.Create("\r\n\0"u8);

    // Made at the first message, so an idle session holds no body buffer.
    private ArrayBufferWriter<byte>? _buffer;
    private long _length;
    private int _lineLength;
    private bool _pendingCr, _inHeaders = true;
    private int _received;
    // The start of the current header line, collected to match "Received:" across reads.
    private readonly byte[] _lineStart = new byte[9];
    private int _lineStartLength;

    public ContentProblem Problem { get; private set; }
    public long Length => _length;
    public ReadOnlyMemory<byte> Written => Buffer.WrittenMemory;

    private ArrayBufferWriter<byte> Buffer => _buffer ??= new ArrayBufferWriter<byte>(InitialCapacity);

    /// <summary>Starts a new message, keeping (or, after a huge one, dropping) the buffer.</summary>
    public void Reset()
    {
        // A session that took one huge message must not hold its buffer for the small ones after it.
        if (_buffer?.Capacity > 1 << 20) _buffer = null;
        else _buffer?.ResetWrittenCount();
        _length = 0;
        _lineLength = 0;
        _pendingCr = false;
        _inHeaders = true;
        _received = 0;
        _lineStartLength = 0;
        Problem = ContentProblem.None;
    }

    /// <summary>Appends message bytes, checking line ends, NUL, line length, hops and size as they pass.</summary>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        _length += bytes.Length;
        if (_length > maxBytes) Fail(ContentProblem.TooBig);
        Check(bytes);
        // Written only once checked, so a refused block (an endless line) never grows the buffer.
        if (Problem == ContentProblem.None) Buffer.Write(bytes);
    }

    private void Check(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            if (_pendingCr)
            {
                _pendingCr = false;
                if (bytes[0] == (byte)'\n')
                {
                    EndLine();
                    bytes = bytes[1..];
                    continue;
                }
                // RFC 5321 §2.3.8: CR only as part of CRLF; anything else is how smuggling starts.
                Fail(ContentProblem.BareCarriageReturn);
            }
            var i = bytes.IndexOfAny(LineBytes);
            var run = i < 0 ? bytes : bytes[..i];
            NoteLineText(run);
            if (i < 0) return;
            switch (bytes[i])
            {
                case (byte)'\r': _pendingCr = true; break;
                case (byte)'\n': Fail(ContentProblem.BareLineFeed); EndLine(); break;
                default: Fail(ContentProblem.Nul); _lineLength++; break;
            }
            bytes = bytes[(i + 1)..];
        }
    }

    /// <summary>At the end of the message: a CR left hanging is a bare CR.</summary>
    public void Complete()
    {
        if (_pendingCr) Fail(ContentProblem.BareCarriageReturn);
        _pendingCr = false;
    }

    private void NoteLineText(ReadOnlySpan<byte> text)
    {
        if (_inHeaders && _lineStartLength < _lineStart.Length)
        {
            var take = Math.Min(text.Length, _lineStart.Length - _lineStartLength);
            text[..take].CopyTo(_lineStart.AsSpan(_lineStartLength));
            _lineStartLength += take;
        }
        _lineLength += text.Length;
        if (_lineLength > MaxLineOctets) Fail(ContentProblem.LineTooLong);
    }

    private void EndLine()
    {
        if (_inHeaders)
        {
            // RFC 5322 §2.1: an empty line ends the header section.
            if (_lineLength == 0) _inHeaders = false;
            else if (IsReceived() && ++_received > MaxReceivedHeaders) Fail(ContentProblem.TooManyHops);
        }
        _lineLength = 0;
        _lineStartLength = 0;
    }

    private bool IsReceived() =>
        _lineStartLength == _lineStart.Length && System.Text.Ascii.EqualsIgnoreCase(_lineStart, "Received:"u8);

    private void Fail(ContentProblem problem)
    {
        if (Problem != ContentProblem.None) return;
        Problem = problem;
        _buffer?.ResetWrittenCount();
    }
}
