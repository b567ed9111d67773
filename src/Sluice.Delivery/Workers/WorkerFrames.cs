// What `sluice serve` and its delivery workers say to each other over a Unix socket: frames of a 4-byte
// length (of what follows), a kind byte, then the body. Hand-written rather than JSON lines because a
// request carries the message's bytes as spooled, which JSON would have to base64; the rest is JSON.
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Threading.Channels;
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

/// <summary>
/// One end of the socket, with a thread each way doing blocking recv(2) and send(2). On the socket engine's
/// thread, a worker's intake waited its turn behind thousands of delivery sessions and took in a socket
/// buffer's worth (~100 requests) per turn, which held a fan-out to a fifth of its pace; and senders
/// handing a lock to each other through the thread pool were slower than the peer. Two threads per
/// worker, not per session. Frames sent are queued, never waited for, and leave in the order queued,
/// as many as are waiting in one send(2).
/// </summary>
internal sealed class WorkerFrames : IAsyncDisposable
{
    /// <summary>A message's frame is its size plus its envelope: the cap only stops a corrupt length from allocating gigabytes.</summary>
    private const int MaxFrameBytes = 1 << 30;
    /// <summary>Frames are gathered up to this many bytes per send; a bigger one goes on its own.</summary>
    private const int BatchBytes = 256 * 1024;

    private readonly Socket _socket;
    private readonly BlockingCollection<(byte[] Frame, int Length)> _outbox = [];
    private readonly Channel<(FrameKind, byte[])> _inbox =
        Channel.CreateUnbounded<(FrameKind, byte[])>(new UnboundedChannelOptions { SingleWriter = true, SingleReader = true });

    /// <param name="socket">Connected, and used by nothing else: it is put in blocking mode.</param>
    public WorkerFrames(Socket socket)
    {
        _socket = socket;
        _socket.Blocking = true;
        new Thread(ReadLoop) { IsBackground = true, Name = "worker frames in" }.Start();
        new Thread(WriteLoop) { IsBackground = true, Name = "worker frames out" }.Start();
    }

    /// <summary>The next frame, or null when the other end has closed the socket between frames.</summary>
    public async Task<(FrameKind Kind, byte[] Body)?> ReadAsync(CancellationToken ct) =>
        await _inbox.Reader.WaitToReadAsync(ct).ConfigureAwait(false) && _inbox.Reader.TryRead(out var frame) ? frame : null;

    /// <summary>Queues one frame whose body is <paramref name="first"/> then <paramref name="second"/>.</summary>
    public void Send(FrameKind kind, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second = default)
    {
        var length = first.Length + second.Length;
        var frame = ArrayPool<byte>.Shared.Rent(5 + length);
        BinaryPrimitives.WriteInt32LittleEndian(frame, length);
        frame[4] = (byte)kind;
        first.CopyTo(frame.AsSpan(5));
        second.CopyTo(frame.AsSpan(5 + first.Length));
        // Closed: the socket is gone, and the reading side finds that out and says so.
        if (!_outbox.TryAdd((frame, 5 + length))) ArrayPool<byte>.Shared.Return(frame);
    }

    private void ReadLoop()
    {
        var head = new byte[5];
        try
        {
            using var reader = new BufferedStream(new NetworkStream(_socket, ownsSocket: false), 64 * 1024);
            while (true)
            {
                var got = reader.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
                if (got == 0) break;
                if (got < head.Length) throw new EndOfStreamException("the socket closed in the middle of a frame");
                var length = BinaryPrimitives.ReadInt32LittleEndian(head);
                if (length is < 0 or > MaxFrameBytes) throw new InvalidDataException($"a frame of {length} bytes");
                var body = new byte[length];
                reader.ReadExactly(body);
                _inbox.Writer.TryWrite(((FrameKind)head[4], body));
            }
            _inbox.Writer.TryComplete();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidDataException or SocketException)
        {
            _inbox.Writer.TryComplete(e is ObjectDisposedException ? null : new IOException(e.Message, e));
        }
    }

    private void WriteLoop()
    {
        var batch = new byte[BatchBytes];
        try
        {
            foreach (var first in _outbox.GetConsumingEnumerable())
            {
                var used = 0;
                for (var next = first; ; )
                {
                    if (next.Length > BatchBytes - used)
                    {
                        Flush(batch, ref used);
                        if (next.Length > BatchBytes) _socket.Send(next.Frame.AsSpan(0, next.Length));
                    }
                    if (next.Length <= BatchBytes)
                    {
                        next.Frame.AsSpan(0, next.Length).CopyTo(batch.AsSpan(used));
                        used += next.Length;
                    }
                    ArrayPool<byte>.Shared.Return(next.Frame);
                    if (!_outbox.TryTake(out next)) break;
                }
                Flush(batch, ref used);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The other end has gone; nothing more can be sent.
        }
        _outbox.CompleteAdding();
    }

    private void Flush(byte[] batch, ref int used)
    {
        if (used > 0) _socket.Send(batch.AsSpan(0, used));
        used = 0;
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

    public ValueTask DisposeAsync()
    {
        _outbox.CompleteAdding();
        try
        {
            _socket.Shutdown(SocketShutdown.Both); // unblocks both threads
        }
        catch (SocketException)
        {
            // Not connected any more.
        }
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
