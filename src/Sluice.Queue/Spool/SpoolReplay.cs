// Start-up recovery: the only place the spool directory is scanned. Replays every segment in
// order; a message record is live until state records mark all its recipients final, or it is
// deleted. A damaged record is skipped and copied to queueN/corrupt; the records after it are read.
using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Sluice.Queue.Spool;

internal sealed class SpoolReplay
{
    public Dictionary<ulong, SpooledMessage> Messages { get; } = [];
    /// <summary>One string per distinct error text: a deferred destination repeats the same text for many recipients.</summary>
    private readonly Dictionary<string, string> _errors = [];
    public SortedDictionary<int, int> LiveBySegment { get; } = [];
    public ulong MaxSequence { get; private set; }
    public int LastSegment { get; private set; }

    public static string SegmentPath(string dir, int segment) =>
        Path.Combine(dir, string.Create(CultureInfo.InvariantCulture, $"seg{segment:D8}.log"));

    public static IEnumerable<int> ListSegments(string dir) =>
        Directory.EnumerateFiles(dir, "seg*.log")
            .Select(f => Path.GetFileNameWithoutExtension(f)[3..])
            .Select(n => int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : -1)
            .Where(s => s >= 0).Order();

    /// <summary>Where damaged records are copied, beside the segments: <c>queueN/corrupt</c>.</summary>
    public static string CorruptDirectory(string dir) => Path.Combine(dir, "corrupt");

    /// <param name="moveAside">Copy damaged regions to <see cref="CorruptDirectory"/> (the owner at start); false to only read.</param>
    public static SpoolReplay Run(string dir, int queue, Action<string> warn, bool moveAside)
    {
        var replay = new SpoolReplay();
        var segments = ListSegments(dir).ToList();
        foreach (var seg in segments)
        {
            replay.LastSegment = seg;
            replay.LiveBySegment[seg] = 0;
            var path = SegmentPath(dir, seg);
            var end = replay.ReadSegment(path, seg, queue);
            if (!OnlyZerosFrom(path, end)) replay.Resynchronise(dir, seg, queue, end, seg == segments[^1], warn, moveAside);
        }
        foreach (var m in replay.Messages.Values) replay.LiveBySegment[m.Segment]++;
        return replay;
    }

    /// <summary>
    /// Whether nothing but zeros follows <paramref name="offset"/>: the writer zeros ahead of its records
    /// (FileQueueStore.ZeroAhead), so zeros, like the end of the file, are where the records end.
    /// </summary>
    private static bool OnlyZerosFrom(string path, long offset)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var buffer = new byte[1 << 16];
        int n;
        while ((n = RandomAccess.Read(handle, buffer, offset)) > 0)
        {
            if (buffer.AsSpan(0, n).ContainsAnyExcept((byte)0)) return false;
            offset += n;
        }
        return true;
    }

    /// <summary>
    /// Past a record that cannot be read, finds the next intact one (its CRC vouches for it) and reads on from
    /// there, so one damaged record costs only itself. The damaged bytes are copied aside as evidence (the segment
    /// itself is never rewritten). At the end of the newest segment they are a write that never finished, left alone.
    /// </summary>
    private void Resynchronise(string dir, int seg, int queue, long pos, bool last, Action<string> warn, bool moveAside)
    {
        var path = SegmentPath(dir, seg);
        var bytes = File.ReadAllBytes(path);
        // The zeros written ahead of the records are neither damage nor an unfinished write.
        var contentEnd = bytes.AsSpan().LastIndexOfAnyExcept((byte)0) + 1;
        while (pos < contentEnd)
        {
            var next = NextIntactFrame(bytes, pos + 1);
            if (next < 0 && last)
            {
                // Never cut away either: new records always go to a fresh segment, so a bad tail stays as it was.
                warn($"queue{queue}: {path}: ignoring {contentEnd - pos} bytes of an unfinished write at offset {pos}");
                return;
            }
            // Inside the newest segment a bad tail is a write that never finished; in an older one it may be a
            // damaged record as well (or a write cut short by a crash before the last restart, or a full disk).
            var stop = next < 0 ? contentEnd : next;
            var where = moveAside ? MoveAside(dir, seg, pos, bytes.AsSpan((int)pos, (int)(stop - pos)), queue, warn) : "not moved aside: read only";
            warn($"queue{queue}: {path}: {stop - pos} damaged bytes at offset {pos} ({where})"
                + (next < 0 ? "; nothing intact follows in this segment" : "; the intact records after them are read"));
            if (next < 0) return;
            pos = ReadFrames(bytes, next, seg, queue);
        }
    }

    /// <summary>The offset of the first intact frame at or after <paramref name="from"/>, or -1.</summary>
    private static long NextIntactFrame(byte[] bytes, long from)
    {
        for (var p = from; p + SpoolRecord.HeaderBytes < bytes.Length; p++)
            if (FrameLength(bytes, p) > 0) return p;
        return -1;
    }

    /// <summary>The payload length of an intact frame of a known type at <paramref name="p"/>, else 0.</summary>
    private static int FrameLength(byte[] bytes, long p)
    {
        if (p + SpoolRecord.HeaderBytes >= bytes.Length) return 0;
        var header = bytes.AsSpan((int)p, SpoolRecord.HeaderBytes);
        var length = BinaryPrimitives.ReadInt32LittleEndian(header);
        if (length <= 0 || p + SpoolRecord.HeaderBytes + length > bytes.Length) return 0;
        var payload = bytes.AsSpan((int)p + SpoolRecord.HeaderBytes, length);
        return SpoolRecord.IsKnownType(payload[0]) && SpoolRecord.IsIntact(header, payload) ? length : 0;
    }

    /// <summary>Applies the intact frames from <paramref name="pos"/> on; returns where the next unreadable one begins.</summary>
    private long ReadFrames(byte[] bytes, long pos, int seg, int queue)
    {
        while (FrameLength(bytes, pos) is var length and > 0)
        {
            if (!TryApply(bytes.AsSpan((int)pos + SpoolRecord.HeaderBytes, length).ToArray(), seg, queue, pos + SpoolRecord.HeaderBytes)) return pos;
            pos += SpoolRecord.HeaderBytes + length;
        }
        return pos;
    }

    /// <summary>Copies damaged bytes to corrupt/segN-OFFSET.bad, durably; says where, or why not.</summary>
    private static string MoveAside(string dir, int seg, long offset, ReadOnlySpan<byte> damaged, int queue, Action<string> warn)
    {
        var corrupt = CorruptDirectory(dir);
        var file = Path.Combine(corrupt, string.Create(CultureInfo.InvariantCulture, $"seg{seg:D8}-{offset}.bad"));
        try
        {
            if (File.Exists(file) && new FileInfo(file).Length == damaged.Length) return $"already copied to {file}";
            Directory.CreateDirectory(corrupt);
            using (var handle = File.OpenHandle(file, FileMode.Create, FileAccess.Write))
            {
                RandomAccess.Write(handle, damaged, 0);
                Sluice.Core.IO.DurableFile.Sync(handle);
            }
            Sluice.Core.IO.DurableFile.SyncDirectory(corrupt);
            return $"copied to {file}";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            warn($"queue{queue}: cannot copy damaged bytes to {file}: {e.Message}");
            return "could not be copied aside";
        }
    }

    /// <summary>Returns the offset after the last intact record.</summary>
    private long ReadSegment(string path, int seg, int queue)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        var header = new byte[SpoolRecord.HeaderBytes];
        long pos = 0;
        while (true)
        {
            if (fs.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length) return pos;
            var length = BinaryPrimitives.ReadInt32LittleEndian(header);
            if (length <= 0 || length > SpoolRecord.MaxPayloadBytes || pos + SpoolRecord.HeaderBytes + length > fs.Length) return pos;
            var payload = new byte[length];
            if (fs.ReadAtLeast(payload, length, throwOnEndOfStream: false) < length) return pos;
            if (!SpoolRecord.IsIntact(header, payload) || !TryApply(payload, seg, queue, pos + SpoolRecord.HeaderBytes)) return pos;
            pos += SpoolRecord.HeaderBytes + length;
        }
    }

    /// <summary>Applies an intact record; false when it cannot be read all the same (then it counts as damaged).</summary>
    private bool TryApply(byte[] payload, int seg, int queue, long payloadOffset)
    {
        try
        {
            Apply(payload, seg, queue, payloadOffset);
            return true;
        }
        catch (Exception e) when (e is EndOfStreamException or FormatException or ArgumentException or OverflowException)
        {
            return false;
        }
    }

    private void Apply(byte[] payload, int seg, int queue, long payloadOffset)
    {
        using var r = new BinaryReader(new MemoryStream(payload), Encoding.UTF8);
        var type = r.ReadByte();
        var seq = r.ReadUInt64();
        if (seq > MaxSequence) MaxSequence = seq;
        if (type == SpoolRecord.MessageType)
        {
            var received = DateTimeOffset.FromUnixTimeMilliseconds(r.ReadInt64());
            // Only the recipient count is kept: the envelope is read back when the message is worked on.
            var envelope = SpoolRecord.ReadEnvelope(r);
            var envelopeEnd = r.BaseStream.Position;
            var bodyLength = r.ReadInt32();
            Messages[seq] = new SpooledMessage(queue, seq, received, envelope.Recipients.Count, bodyLength)
            {
                Segment = seg,
                EnvelopeOffset = payloadOffset + SpoolRecord.EnvelopeStart,
                EnvelopeLength = (int)(envelopeEnd - SpoolRecord.EnvelopeStart),
            };
        }
        else if (type == SpoolRecord.StateType && Messages.TryGetValue(seq, out var m))
        {
            var index = r.Read7BitEncodedInt();
            var status = (RecipientStatus)r.ReadByte();
            var attempts = r.Read7BitEncodedInt();
            var nextMs = r.ReadInt64();
            var error = r.ReadString();
            if (index >= m.States.Count) return;
            var next = nextMs == long.MinValue ? DateTimeOffset.MinValue : DateTimeOffset.FromUnixTimeMilliseconds(nextMs);
            m.Set(index, status, attempts, next, error.Length == 0 ? null : Shared(error), out _);
            if (m.PendingRecipients == 0) Messages.Remove(seq);
        }
        else if (type == SpoolRecord.WarnedType && Messages.TryGetValue(seq, out var warned))
        {
            warned.DelayWarned = true;
        }
        else if (type == SpoolRecord.HoldType && Messages.TryGetValue(seq, out var held))
        {
            held.Held = r.ReadBoolean();
        }
        else if (type == SpoolRecord.DeletedType)
        {
            Messages.Remove(seq);
        }
    }

    private string Shared(string error)
    {
        if (_errors.TryGetValue(error, out var known)) return known;
        if (_errors.Count < 100_000) _errors[error] = error;
        return error;
    }
}
