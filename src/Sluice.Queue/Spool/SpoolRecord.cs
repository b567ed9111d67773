// Byte layout of spool records. Hand-written because it is the on-disk format: it must be exact,
// versioned and checksummed so recovery can tell a torn tail from a committed record.
//
//   frame   = length:u32le crc32:u32le payload[length]     (crc over payload)
//   payload = 'M' seq:u64 receivedMs:i64 sender:str count:7bit rcpt:str* ext bodyLength:i32 body
//           | 'S' seq:u64 recipient:7bit status:u8 attempts:7bit nextAttemptMs:i64 lastError:str
//           | 'W' seq:u64                                        (the message has had its delay warning)
//           | 'H' seq:u64 held:u8                                (held by the operator: 1, released: 0; the last one counts)
//           | 'D' seq:u64                                        (deleted by the operator: no recipient is tried again)
//   ext     = flags:u8 [ret:u8 envid:str auth:str (notify:u8 orcpt:str){count}]   (the rest only if flags has 0x80)
//             flags: 0x01 SMTPUTF8, 0x02 BODY=8BITMIME, 0x04 double bounce, 0x80 DSN/AUTH fields follow
//   str     = BinaryWriter's 7-bit length + UTF-8 bytes
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Sluice.Core.Mail;

namespace Sluice.Queue.Spool;

internal static class SpoolRecord
{
    public const int HeaderBytes = 8;
    public const byte MessageType = (byte)'M';
    public const byte StateType = (byte)'S';
    public const byte WarnedType = (byte)'W';
    public const byte HoldType = (byte)'H';
    public const byte DeletedType = (byte)'D';
    /// <summary>Payload bytes before the envelope: type, sequence, receivedMs.</summary>
    public const int EnvelopeStart = 1 + sizeof(ulong) + sizeof(long);
    /// <summary>Larger frames are corruption: Smtp.MaxMessageBytes is far below this.</summary>
    public const int MaxPayloadBytes = 1 << 30;

    /// <summary>The frame parts of a message record: header+envelope, then trace and body as given (not copied).</summary>
    /// <param name="trace">The message's first bytes (its Received header), stored as one with <paramref name="body"/>.</param>
    public static ReadOnlyMemory<byte>[] EncodeMessage(ulong seq, DateTimeOffset received, Envelope envelope,
        ReadOnlyMemory<byte> trace, ReadOnlyMemory<byte> body, out int envelopeBytes)
    {
        var ms = new MemoryStream(256);
        ms.Position = HeaderBytes;
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(MessageType);
            w.Write(seq);
            w.Write(received.ToUnixTimeMilliseconds());
            w.Write(envelope.Sender);
            w.Write7BitEncodedInt(envelope.Recipients.Count);
            foreach (var r in envelope.Recipients) w.Write(r);
            WriteExtensions(w, envelope);
            w.Write(trace.Length + body.Length);
        }
        var head = ms.GetBuffer().AsMemory(0, (int)ms.Length);
        envelopeBytes = head.Length - HeaderBytes;
        var crc = new Crc32();
        crc.Append(head.Span[HeaderBytes..]);
        crc.Append(trace.Span);
        crc.Append(body.Span);
        BinaryPrimitives.WriteInt32LittleEndian(head.Span, envelopeBytes + trace.Length + body.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(head.Span[4..], crc.GetCurrentHashAsUInt32());
        return trace.IsEmpty ? [head, body] : [head, trace, body];
    }

    private const byte SmtpUtf8Flag = 0x01, EightBitFlag = 0x02, DoubleBounceFlag = 0x04, MoreFlag = 0x80;

    private static void WriteExtensions(BinaryWriter w, Envelope e)
    {
        var more = e.Dsn is not null || e.Return != DsnReturn.Unspecified || e.EnvelopeId is not null || e.AuthenticatedAs is not null;
        w.Write((byte)((e.SmtpUtf8 ? SmtpUtf8Flag : 0) | (e.EightBitMime ? EightBitFlag : 0) | (e.DoubleBounce ? DoubleBounceFlag : 0) | (more ? MoreFlag : 0)));
        if (!more) return;
        w.Write((byte)e.Return);
        w.Write(e.EnvelopeId ?? "");
        w.Write(e.AuthenticatedAs ?? "");
        for (int i = 0; i < e.Recipients.Count; i++)
        {
            var dsn = e.DsnOf(i);
            w.Write((byte)dsn.Notify);
            w.Write(dsn.OriginalRecipient ?? "");
        }
    }

    /// <summary>Reads an envelope written by <see cref="EncodeMessage"/>, up to the body length.</summary>
    public static Envelope ReadEnvelope(BinaryReader r)
    {
        var sender = r.ReadString();
        var rcpts = new string[r.Read7BitEncodedInt()];
        for (int i = 0; i < rcpts.Length; i++) rcpts[i] = r.ReadString();
        var flags = r.ReadByte();
        if ((flags & MoreFlag) == 0)
            return new Envelope(sender, rcpts)
            {
                SmtpUtf8 = (flags & SmtpUtf8Flag) != 0,
                EightBitMime = (flags & EightBitFlag) != 0,
                DoubleBounce = (flags & DoubleBounceFlag) != 0,
            };
        var ret = (DsnReturn)r.ReadByte();
        var envid = r.ReadString();
        var auth = r.ReadString();
        var dsn = new RecipientDsn[rcpts.Length];
        for (int i = 0; i < dsn.Length; i++)
        {
            var notify = (DsnNotify)r.ReadByte();
            var orcpt = r.ReadString();
            dsn[i] = new RecipientDsn(notify, orcpt.Length == 0 ? null : orcpt);
        }
        return new Envelope(sender, rcpts)
        {
            SmtpUtf8 = (flags & SmtpUtf8Flag) != 0,
            EightBitMime = (flags & EightBitFlag) != 0,
            DoubleBounce = (flags & DoubleBounceFlag) != 0,
            Return = ret,
            EnvelopeId = envid.Length == 0 ? null : envid,
            AuthenticatedAs = auth.Length == 0 ? null : auth,
            Dsn = dsn.Any(d => d != default) ? dsn : null,
        };
    }

    public static byte[] EncodeState(ulong seq, int recipient, RecipientStatus status, int attempts, DateTimeOffset next, string? lastError) =>
        Frame(StateType, seq, w =>
        {
            w.Write7BitEncodedInt(recipient);
            w.Write((byte)status);
            w.Write7BitEncodedInt(attempts);
            w.Write(next == DateTimeOffset.MinValue ? long.MinValue : next.ToUnixTimeMilliseconds());
            w.Write(lastError ?? "");
        });

    public static byte[] EncodeWarned(ulong seq) => Frame(WarnedType, seq, _ => { });

    public static byte[] EncodeHold(ulong seq, bool held) => Frame(HoldType, seq, w => w.Write(held));

    public static byte[] EncodeDeleted(ulong seq) => Frame(DeletedType, seq, _ => { });

    /// <summary>A payload's first byte is one of these; a resynchronising scan checks it before the CRC.</summary>
    public static bool IsKnownType(byte type) =>
        type is MessageType or StateType or WarnedType or HoldType or DeletedType;

    private static byte[] Frame(byte type, ulong seq, Action<BinaryWriter> fields)
    {
        var ms = new MemoryStream(64);
        ms.Position = HeaderBytes;
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(type);
            w.Write(seq);
            fields(w);
        }
        var frame = ms.ToArray();
        BinaryPrimitives.WriteInt32LittleEndian(frame, frame.Length - HeaderBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(4), Crc32.HashToUInt32(frame.AsSpan(HeaderBytes)));
        return frame;
    }

    /// <summary>Reads a waiting message's envelope back from its segment (the bytes were checked at replay or written by us).</summary>
    public static async ValueTask<Envelope> ReadEnvelopeAsync(Microsoft.Win32.SafeHandles.SafeFileHandle segment, SpooledMessage m, CancellationToken ct)
    {
        var bytes = new byte[m.EnvelopeLength];
        var read = 0;
        while (read < bytes.Length)
        {
            var n = await RandomAccess.ReadAsync(segment, bytes.AsMemory(read), m.EnvelopeOffset + read, ct).ConfigureAwait(false);
            if (n == 0) throw new IOException($"queue{m.QueueNumber}: the envelope of {m.Id} is cut short in segment {m.Segment}");
            read += n;
        }
        using var r = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
        return ReadEnvelope(r);
    }

    /// <summary>Checks a frame's payload against its header checksum.</summary>
    public static bool IsIntact(ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload) =>
        BinaryPrimitives.ReadUInt32LittleEndian(header[4..]) == Crc32.HashToUInt32(payload);
}
