// Byte layout of spool records. Hand-written because it is the on-disk format: it must be exact,
// versioned and checksummed so recovery can tell a torn tail from a committed record.
//
//   frame   = length:u32le crc32:u32le payload[length]     (crc over payload)
//   payload = 'M' seq:u64 receivedMs:i64 sender:str count:7bit rcpt:str* bodyLength:i32 body
//           | 'S' seq:u64 recipient:7bit status:u8 attempts:7bit nextAttemptMs:i64 lastError:str
//   str     = BinaryWriter's 7-bit length + UTF-8 bytes
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace Sluice.Queue.Spool;

internal static class SpoolRecord
{
    public const int HeaderBytes = 8;
    public const byte MessageType = (byte)'M';
    public const byte StateType = (byte)'S';
    /// <summary>Larger frames are corruption: Smtp.MaxMessageBytes is far below this.</summary>
    public const int MaxPayloadBytes = 1 << 30;

    /// <summary>The frame parts of a message record: header+envelope, then the body as given (not copied).</summary>
    public static ReadOnlyMemory<byte>[] EncodeMessage(ulong seq, DateTimeOffset received, string sender,
        IReadOnlyList<string> recipients, ReadOnlyMemory<byte> body, out int envelopeBytes)
    {
        var ms = new MemoryStream(256);
        ms.Position = HeaderBytes;
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(MessageType);
            w.Write(seq);
            w.Write(received.ToUnixTimeMilliseconds());
            w.Write(sender);
            w.Write7BitEncodedInt(recipients.Count);
            foreach (var r in recipients) w.Write(r);
            w.Write(body.Length);
        }
        var head = ms.GetBuffer().AsMemory(0, (int)ms.Length);
        envelopeBytes = head.Length - HeaderBytes;
        var crc = new Crc32();
        crc.Append(head.Span[HeaderBytes..]);
        crc.Append(body.Span);
        BinaryPrimitives.WriteInt32LittleEndian(head.Span, envelopeBytes + body.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(head.Span[4..], crc.GetCurrentHashAsUInt32());
        return [head, body];
    }

    public static byte[] EncodeState(ulong seq, int recipient, RecipientStatus status, int attempts, DateTimeOffset next, string? lastError)
    {
        var ms = new MemoryStream(64);
        ms.Position = HeaderBytes;
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(StateType);
            w.Write(seq);
            w.Write7BitEncodedInt(recipient);
            w.Write((byte)status);
            w.Write7BitEncodedInt(attempts);
            w.Write(next == DateTimeOffset.MinValue ? long.MinValue : next.ToUnixTimeMilliseconds());
            w.Write(lastError ?? "");
        }
        var frame = ms.ToArray();
        BinaryPrimitives.WriteInt32LittleEndian(frame, frame.Length - HeaderBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(4), Crc32.HashToUInt32(frame.AsSpan(HeaderBytes)));
        return frame;
    }

    /// <summary>Checks a frame's payload against its header checksum.</summary>
    public static bool IsIntact(ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload) =>
        BinaryPrimitives.ReadUInt32LittleEndian(header[4..]) == Crc32.HashToUInt32(payload);
}
