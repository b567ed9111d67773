// What `sluice serve` and its delivery workers say to each other over a Unix socket: frames of a 4-byte
// length (of what follows), a kind byte, then the body. Hand-written rather than JSON lines because a
// request carries the message's bytes as spooled, which JSON would have to base64; the rest is JSON.
using System.Buffers.Binary;
using Sluice.Core.Mail;

namespace Sluice.Delivery.Workers;

internal enum FrameKind : byte
{
    /// <summary>Worker → server, first: <see cref="WorkerHello"/>.</summary>
    Hello = 1,
    /// <summary>Server → worker, once: <see cref="Smtp.SmtpAgentSettings"/>.</summary>
    Setup = 2,
    /// <summary>Server → worker: request id (8 bytes), header length (4), <see cref="DeliveryHeader"/>, the message.</summary>
    Deliver = 3,
    /// <summary>Server → worker: the id of a request no longer wanted.</summary>
    Cancel = 4,
    /// <summary>Server → worker: a reloaded routes table.</summary>
    Routes = 5,
    /// <summary>Worker → server: request id (8 bytes), then its RecipientResult[].</summary>
    Results = 6,
}

/// <param name="Token">The secret the server gave this worker when it started it: only its own children may deliver for it.</param>
/// <param name="MaxConnections">Outbound connections this worker's open-files limit leaves room for.</param>
internal sealed record WorkerHello(string Token, int Pid, int MaxConnections);

/// <summary>A <see cref="DeliveryRequest"/> but for its message bytes, which follow it in the frame.</summary>
internal sealed record DeliveryHeader(string MessageId, string Sender, IReadOnlyList<string> Recipients, string Destination,
    Envelope? Envelope, IReadOnlyList<RecipientDsn>? Dsn);

/// <summary>One end of the socket: frames in, one reader at a time; frames out, whole, from any number of writers.</summary>
internal sealed class WorkerFrames(Stream stream) : IAsyncDisposable
{
    /// <summary>A message's frame is its size plus its envelope: the cap only stops a corrupt length from allocating gigabytes.</summary>
    private const int MaxFrameBytes = 1 << 30;

    private readonly SemaphoreSlim _writing = new(1, 1);
    private readonly byte[] _head = new byte[5];

    /// <summary>The next frame, or null when the other end has closed the socket between frames.</summary>
    public async Task<(FrameKind Kind, byte[] Body)?> ReadAsync(CancellationToken ct)
    {
        var got = await stream.ReadAtLeastAsync(_head, _head.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        if (got == 0) return null;
        if (got < _head.Length) throw new EndOfStreamException("the socket closed in the middle of a frame");
        var length = BinaryPrimitives.ReadInt32LittleEndian(_head);
        if (length is < 0 or > MaxFrameBytes) throw new InvalidDataException($"a frame of {length} bytes");
        var body = new byte[length];
        await stream.ReadExactlyAsync(body, ct).ConfigureAwait(false);
        return ((FrameKind)_head[4], body);
    }

    /// <summary>Writes one frame whose body is <paramref name="first"/> then <paramref name="second"/>.</summary>
    /// <param name="ct">Only for waiting a turn: a frame once begun is always finished, or the stream would be out of step.</param>
    public async Task WriteAsync(FrameKind kind, ReadOnlyMemory<byte> first, ReadOnlyMemory<byte> second = default, CancellationToken ct = default)
    {
        var head = new byte[5];
        BinaryPrimitives.WriteInt32LittleEndian(head, first.Length + second.Length);
        head[4] = (byte)kind;
        await _writing.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await stream.WriteAsync(head, CancellationToken.None).ConfigureAwait(false);
            await stream.WriteAsync(first, CancellationToken.None).ConfigureAwait(false);
            if (!second.IsEmpty) await stream.WriteAsync(second, CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _writing.Release();
        }
    }

    /// <summary>An id in front of a body, as Deliver, Cancel and Results frames begin.</summary>
    public static byte[] WithId(long id, ReadOnlySpan<byte> rest)
    {
        var bytes = new byte[8 + rest.Length];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, id);
        rest.CopyTo(bytes.AsSpan(8));
        return bytes;
    }

    public static long IdOf(byte[] body) => BinaryPrimitives.ReadInt64LittleEndian(body);

    public ValueTask DisposeAsync() => stream.DisposeAsync();
}
