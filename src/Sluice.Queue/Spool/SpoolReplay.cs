// Start-up recovery: the only place the spool directory is scanned. Replays every segment in
// order; a message record is live until state records mark all its recipients final.
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

    public static SpoolReplay Run(string dir, int queue, Action<string> warn)
    {
        var replay = new SpoolReplay();
        var segments = ListSegments(dir).ToList();
        foreach (var seg in segments)
        {
            replay.LastSegment = seg;
            replay.LiveBySegment[seg] = 0;
            var path = SegmentPath(dir, seg);
            var end = replay.ReadSegment(path, seg, queue);
            var length = new FileInfo(path).Length;
            // New records always go to a fresh segment, so a bad tail is left as it is (never cut
            // away: it may be evidence); at the end of the last segment it is an unfinished, never
            // acknowledged write.
            if (end != length)
                warn(seg == segments[^1]
                    ? $"queue{queue}: {path}: ignoring {length - end} bytes of an unfinished write at offset {end}"
                    : $"queue{queue}: {path}: damaged record at offset {end}; the rest of this segment cannot be read");
        }
        foreach (var m in replay.Messages.Values) replay.LiveBySegment[m.Segment]++;
        return replay;
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
            if (!SpoolRecord.IsIntact(header, payload)) return pos;
            Apply(payload, seg, queue, pos + SpoolRecord.HeaderBytes);
            pos += SpoolRecord.HeaderBytes + length;
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
            m.Set(index, status, attempts, next, error.Length == 0 ? null : Shared(error));
            if (m.PendingRecipients == 0) Messages.Remove(seq);
        }
        else if (type == SpoolRecord.WarnedType && Messages.TryGetValue(seq, out var warned))
        {
            warned.DelayWarned = true;
        }
    }

    private string Shared(string error)
    {
        if (_errors.TryGetValue(error, out var known)) return known;
        if (_errors.Count < 100_000) _errors[error] = error;
        return error;
    }
}
