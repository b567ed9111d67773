// The file spool of one queue (<Queue.Base>/queue<N>): an append-only log of segment files.
// Concurrent commits are grouped: one writer appends every waiting record with one pwritev and
// makes them durable with one fdatasync, so throughput is not bound to one fsync per message.
// Zeros are written ahead of the records, so most commits overwrite blocks the file already has
// and flush data alone, without the inode and block-allocation writes of an append.
// States, commit points and recovery are drawn in docs/INTERNALS.md.
using System.Threading.Channels;
using Microsoft.Win32.SafeHandles;
using Sluice.Core.IO;
using Sluice.Core.Mail;

namespace Sluice.Queue.Spool;

public sealed class FileQueueStore : IQueueStore
{
    /// <summary>Bytes one group commit carries at most; bounds the latency a large message adds to others.</summary>
    private const long MaxBatchBytes = 8 << 20;

    /// <summary>Zeros written past the records at a time: one commit in this many bytes pays for growing the file.</summary>
    private const int ZeroAheadBytes = 1 << 20;
    private static readonly ReadOnlyMemory<byte> Zeros = new byte[ZeroAheadBytes];

    private readonly string _dir;
    private readonly long _segmentBytes;
    private readonly TimeProvider _time;
    private readonly Channel<PendingRecord> _pending = Channel.CreateUnbounded<PendingRecord>(new() { SingleReader = true });
    private readonly Dictionary<int, SafeFileHandle> _segments = [];
    private readonly SortedDictionary<int, int> _liveBySegment;
    /// <summary>Every live message by sequence, for the operator's verbs (guarded by _segmentsLock).</summary>
    private readonly Dictionary<ulong, SpooledMessage> _live;
    private readonly Lock _segmentsLock = new();
    private readonly Task _writer;
    private int _active;
    private long _activeLength;
    /// <summary>Where the active segment's zeros end: records up to here overwrite blocks that are already there.</summary>
    private long _zeroedTo;
    private long _nextSequence;
    private int _messages, _recipients;
    private long _syncs, _records;
    private FileStream? _ownerLock;

    private FileQueueStore(int number, string dir, long segmentBytes, TimeProvider time, SpoolReplay replay)
    {
        Number = number;
        _dir = dir;
        _segmentBytes = segmentBytes;
        _time = time;
        _liveBySegment = replay.LiveBySegment;
        _live = replay.Messages;
        Recovered = replay.Messages.Values.OrderBy(m => m.Sequence).ToList();
        _messages = Recovered.Count;
        _recipients = Recovered.Sum(m => m.PendingRecipients);
        var clockSequence = (ulong)Math.Max(0, time.GetUtcNow().ToUnixTimeMilliseconds()) * 1000;
        _nextSequence = (long)Math.Max(replay.MaxSequence + 1, clockSequence);
        foreach (var seg in _liveBySegment.Keys) _segments[seg] = OpenSegment(seg, FileMode.Open);
        StartSegment(replay.LastSegment + 1);
        RetireSegments();
        _writer = StartWriter($"queue{number} spool");
    }

    /// <summary>Opens (creating if needed) and recovers the spool in <paramref name="dir"/>.</summary>
    public static FileQueueStore Open(int number, string dir, long segmentBytes, TimeProvider time, Action<string> warn)
    {
        Directory.CreateDirectory(dir);
        // One owner per spool: a second process would retire segments under the first (flock LOCK_EX).
        FileStream ownerLock;
        try
        {
            ownerLock = new FileStream(Path.Combine(dir, "lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new IOException($"queue{number}: {dir} is in use by another sluice process ({e.Message})", e);
        }
        try
        {
            var replay = SpoolReplay.Run(dir, number, warn, moveAside: true);
            return new FileQueueStore(number, dir, segmentBytes, time, replay) { _ownerLock = ownerLock };
        }
        catch
        {
            ownerLock.Dispose();
            throw;
        }
    }

    /// <summary>Reads a spool without changing it, for `sluice queue stat` beside a running server.</summary>
    public static IReadOnlyCollection<QueuedMessage> ReadOnly(int number, string dir, Action<string> warn)
    {
        if (!Directory.Exists(dir)) return [];
        var messages = new List<QueuedMessage>();
        foreach (var segment in SpoolReplay.Run(dir, number, warn, moveAside: false).Messages.Values.GroupBy(m => m.Segment))
        {
            using var handle = File.OpenHandle(SpoolReplay.SegmentPath(dir, segment.Key), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            foreach (var m in segment)
                messages.Add(new(m, SpoolRecord.ReadEnvelopeAsync(handle, m, CancellationToken.None).AsTask().GetAwaiter().GetResult()));
        }
        return messages;
    }

    /// <summary>Damaged records copied aside at start (queueN/corrupt), for `sluice queue stat` to report.</summary>
    public static IReadOnlyList<FileInfo> CorruptEntries(string dir)
    {
        var corrupt = new DirectoryInfo(SpoolReplay.CorruptDirectory(dir));
        return corrupt.Exists ? [.. corrupt.EnumerateFiles().OrderBy(f => f.Name, StringComparer.Ordinal)] : [];
    }

    public int Number { get; }
    public IReadOnlyCollection<SpooledMessage> Recovered { get; }
    /// <summary>A spool is this node's alone: nothing is ever taken over, and nothing taken away.</summary>
    public System.Threading.Channels.ChannelReader<SpooledMessage> Claimed => NoClaims.Reader;
    public ValueTask<bool> MayDeliverAsync(SpooledMessage message, CancellationToken ct) => ValueTask.FromResult(true);
    private static readonly System.Threading.Channels.Channel<SpooledMessage> NoClaims = System.Threading.Channels.Channel.CreateUnbounded<SpooledMessage>();
    public int MessageCount => Volatile.Read(ref _messages);
    public int RecipientCount => Volatile.Read(ref _recipients);
    public (long Syncs, long Records) CommitStats => (Interlocked.Read(ref _syncs), Interlocked.Read(ref _records));

    public async Task<QueuedMessage> AcceptAsync(Envelope envelope, TraceHeader? trace, ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        var seq = (ulong)Interlocked.Increment(ref _nextSequence);
        var received = _time.GetUtcNow();
        var head = trace?.Invoke(SpooledMessage.FormatId(Number, seq)) ?? ReadOnlyMemory<byte>.Empty;
        var parts = SpoolRecord.EncodeMessage(seq, received, envelope, head, body, out var headBytes);
        var (segment, offset) = await Commit(parts, isMessage: true).ConfigureAwait(false);
        var spooled = new SpooledMessage(Number, seq, received, envelope.Recipients.Count, head.Length + body.Length)
        {
            Segment = segment,
            EnvelopeOffset = offset + SpoolRecord.HeaderBytes + SpoolRecord.EnvelopeStart,
            EnvelopeLength = headBytes - SpoolRecord.EnvelopeStart - sizeof(int),
        };
        Interlocked.Increment(ref _messages);
        Interlocked.Add(ref _recipients, envelope.Recipients.Count);
        lock (_segmentsLock) _live[seq] = spooled;
        return new QueuedMessage(spooled, envelope);
    }

    public IReadOnlyList<SpooledMessage> LiveMessages()
    {
        lock (_segmentsLock) return [.. _live.Values];
    }

    public SpooledMessage? Find(ulong sequence)
    {
        lock (_segmentsLock) return _live.GetValueOrDefault(sequence);
    }

    public async Task RecordAsync(QueuedMessage message, int recipient, RecipientStatus status, DateTimeOffset nextAttempt, string? lastError, CancellationToken ct)
    {
        var m = message.Spooled;
        var attempts = m.States[recipient].Attempts + 1;
        await Commit([SpoolRecord.EncodeState(m.Sequence, recipient, status, attempts, nextAttempt, lastError)], isMessage: false)
            .ConfigureAwait(false);
        var finished = m.Set(recipient, status, attempts, nextAttempt, lastError, out var becameFinal);
        if (becameFinal) Interlocked.Decrement(ref _recipients);
        if (finished) Finished(m);
    }

    public async Task RecordDelayWarningAsync(QueuedMessage message, CancellationToken ct)
    {
        await Commit([SpoolRecord.EncodeWarned(message.Spooled.Sequence)], isMessage: false).ConfigureAwait(false);
        message.Spooled.DelayWarned = true;
    }

    public async Task RecordHoldAsync(SpooledMessage message, bool held, CancellationToken ct)
    {
        await Commit([SpoolRecord.EncodeHold(message.Sequence, held)], isMessage: false).ConfigureAwait(false);
        message.Held = held;
    }

    public async Task<int> DeleteAsync(SpooledMessage message, CancellationToken ct)
    {
        if (message.PendingRecipients == 0) return 0;
        await Commit([SpoolRecord.EncodeDeleted(message.Sequence)], isMessage: false).ConfigureAwait(false);
        // Counted as they are now: a delivery that ended meanwhile has taken its recipient off already.
        var deleted = message.Delete();
        if (deleted == 0) return 0;
        Interlocked.Add(ref _recipients, -deleted);
        Finished(message);
        return deleted;
    }

    /// <summary>The message's last pending recipient became final: it is no longer live, and its segment may go.</summary>
    private void Finished(SpooledMessage m)
    {
        Interlocked.Decrement(ref _messages);
        lock (_segmentsLock)
        {
            _liveBySegment[m.Segment]--;
            _live.Remove(m.Sequence);
        }
        RetireSegments();
    }

    public async Task<QueuedMessage> LoadAsync(SpooledMessage message, CancellationToken ct) =>
        new(message, await SpoolRecord.ReadEnvelopeAsync(SegmentOf(message), message, ct).ConfigureAwait(false));

    private SafeFileHandle SegmentOf(SpooledMessage message)
    {
        lock (_segmentsLock) return _segments[message.Segment];
    }

    public async Task<byte[]> ReadBodyAsync(QueuedMessage queued, CancellationToken ct)
    {
        var message = queued.Spooled;
        var handle = SegmentOf(message);
        var body = new byte[message.BodyLength];
        var read = 0;
        while (read < body.Length)
        {
            var n = await RandomAccess.ReadAsync(handle, body.AsMemory(read), message.BodyOffset + read, ct).ConfigureAwait(false);
            if (n == 0) throw new IOException($"queue{Number}: message {message.Id} is cut short in segment {message.Segment}");
            read += n;
        }
        return body;
    }

    private Task<(int Segment, long Offset)> Commit(ReadOnlyMemory<byte>[] parts, bool isMessage)
    {
        var record = new PendingRecord(parts, isMessage);
        if (!_pending.Writer.TryWrite(record)) throw new ObjectDisposedException($"queue{Number}", "the spool is closed");
        return record.Done.Task;
    }

    /// <summary>
    /// The writer blocks in write and fsync, so it gets a thread of its own: on the thread pool it would hold
    /// one of the few threads (one per core to start with) that every session's continuations need, and the
    /// 250s queued behind a slow fsync would wait for the pool to grow.
    /// </summary>
    private Task StartWriter(string name)
    {
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try
            {
                WriteLoop();
                stopped.SetResult();
            }
            catch (Exception e)
            {
                stopped.SetException(e);
            }
        }) { IsBackground = true, Name = name }.Start();
        return stopped.Task;
    }

    private void WriteLoop()
    {
        var batch = new List<PendingRecord>();
        var buffers = new List<ReadOnlyMemory<byte>>();
        var reader = _pending.Reader;
        while (WaitToRead(reader))
        {
            batch.Clear();
            buffers.Clear();
            long bytes = 0;
            while (bytes < MaxBatchBytes && reader.TryRead(out var record))
            {
                batch.Add(record);
                bytes += record.Length;
            }
            try
            {
                if (_activeLength > 0 && _activeLength + bytes > _segmentBytes) StartSegment(_active + 1);
                SafeFileHandle handle;
                lock (_segmentsLock) handle = _segments[_active];
                var offset = _activeLength;
                foreach (var r in batch) buffers.AddRange(r.Parts);
                var zeroedTo = ZeroAhead(buffers, _activeLength + bytes);
                RandomAccess.Write(handle, buffers, _activeLength);
                DurableFile.SyncData(handle);
                _zeroedTo = zeroedTo;
                Interlocked.Increment(ref _syncs);
                Interlocked.Add(ref _records, batch.Count);
                _activeLength += bytes;
                // Counted before anyone hears of the commit, so the segment cannot be retired under it.
                var messages = batch.Count(r => r.IsMessage);
                lock (_segmentsLock) _liveBySegment[_active] += messages;
                foreach (var r in batch)
                {
                    r.Done.TrySetResult((_active, offset));
                    offset += r.Length;
                }
            }
            catch (Exception e)
            {
                foreach (var r in batch) r.Done.TrySetException(e);
                // A half-written batch must not sit in front of later records: continue in a new segment.
                try { StartSegment(_active + 1); }
                catch (Exception again) when (again is IOException or UnauthorizedAccessException) { }
            }
        }
    }

    /// <summary>
    /// When a batch ending at <paramref name="end"/> would pass the zeros, adds the next ones to the same write
    /// (up to the segment's size); returns where the zeros end after it. Replay reads zeros as the end of a segment.
    /// </summary>
    private long ZeroAhead(List<ReadOnlyMemory<byte>> buffers, long end)
    {
        if (end <= _zeroedTo || end >= _segmentBytes) return Math.Max(_zeroedTo, end);
        var zeros = (int)Math.Min(ZeroAheadBytes, _segmentBytes - end);
        buffers.Add(Zeros[..zeros]);
        return end + zeros;
    }

    /// <summary>Blocks this (the writer's own) thread until a record waits or the queue is closing.</summary>
    private static bool WaitToRead(ChannelReader<PendingRecord> reader)
    {
        var wait = reader.WaitToReadAsync();
        return wait.IsCompletedSuccessfully ? wait.Result : wait.AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Creates segment <paramref name="segment"/> and makes its name durable before any record goes in.</summary>
    private void StartSegment(int segment)
    {
        var handle = OpenSegment(segment, FileMode.CreateNew);
        try
        {
            DurableFile.SyncDirectory(_dir);
        }
        catch
        {
            handle.Dispose();
            File.Delete(SpoolReplay.SegmentPath(_dir, segment));
            throw;
        }
        lock (_segmentsLock)
        {
            _segments[segment] = handle;
            _liveBySegment.TryAdd(segment, 0);
            _active = segment;
        }
        _activeLength = 0;
        _zeroedTo = 0;
        RetireSegments();
    }

    private SafeFileHandle OpenSegment(int segment, FileMode mode) =>
        File.OpenHandle(SpoolReplay.SegmentPath(_dir, segment), mode, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete);

    /// <summary>
    /// Deletes the oldest segments while they hold no live message. Only a prefix may go: a later
    /// segment can hold the state records that finish messages of an earlier one.
    /// </summary>
    private void RetireSegments()
    {
        lock (_segmentsLock)
        {
            while (_liveBySegment.Count > 0)
            {
                var (oldest, live) = _liveBySegment.First();
                if (live > 0 || oldest == _active) return;
                try
                {
                    File.Delete(SpoolReplay.SegmentPath(_dir, oldest));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    return; // kept and tried again at the next retirement; a leftover file is only replayed, never lost
                }
                _liveBySegment.Remove(oldest);
                if (_segments.Remove(oldest, out var handle)) handle.Dispose();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _pending.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        lock (_segmentsLock)
        {
            foreach (var h in _segments.Values) h.Dispose();
            _segments.Clear();
        }
        _ownerLock?.Dispose();
    }

    private sealed class PendingRecord(ReadOnlyMemory<byte>[] parts, bool isMessage)
    {
        public ReadOnlyMemory<byte>[] Parts { get; } = parts;
        public bool IsMessage { get; } = isMessage;
        public long Length { get; } = parts.Sum(p => (long)p.Length);
        public TaskCompletionSource<(int, long)> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
