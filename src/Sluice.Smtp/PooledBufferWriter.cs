// An IBufferWriter whose memory is rented from the shared pool and given back by Reset: an outbound
// connection holds a buffer only while it sends, not for the minutes it waits for a reply or idles
// in the pool (an ArrayBufferWriter kept the largest message a connection had ever sent).
// Hand-written: the BCL has no pooled IBufferWriter.
using System.Buffers;

namespace Sluice.Smtp;

internal sealed class PooledBufferWriter(int initialSize) : IBufferWriter<byte>
{
    private byte[] _buffer = [];
    private int _written;

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (_written + count > _buffer.Length) throw new InvalidOperationException("advanced past the buffer");
        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0) => Ensure(sizeHint).AsMemory(_written);

    public Span<byte> GetSpan(int sizeHint = 0) => Ensure(sizeHint).AsSpan(_written);

    /// <summary>Forgets what was written and gives the buffer back to the pool.</summary>
    public void Reset()
    {
        if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
        (_buffer, _written) = ([], 0);
    }

    private byte[] Ensure(int sizeHint)
    {
        var needed = _written + Math.Max(sizeHint, 1);
        if (needed <= _buffer.Length) return _buffer;
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, Math.Max(initialSize, _buffer.Length * 2)));
        _buffer.AsSpan(0, _written).CopyTo(bigger);
        if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
        return _buffer = bigger;
    }
}
