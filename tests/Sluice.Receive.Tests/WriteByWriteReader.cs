// A PipeReader that hands the session exactly one client write per read, so a test decides how the
// input is fragmented (one byte, one line, one block) instead of the pipe coalescing writes at random.
using System.Buffers;
using System.IO.Pipelines;

namespace Sluice.Receive.Tests;

internal sealed class WriteByWriteReader : PipeReader
{
    private readonly object _lock = new();
    private readonly Queue<byte[]> _writes = new();
    private readonly List<TaskCompletionSource> _idleWaiters = [];
    private TaskCompletionSource? _writeArrived;
    // What the session has not consumed yet: _data[_start.._end]. Replaced, never changed in place,
    // because the sequence handed out by the last read may still be looked at until AdvanceTo.
    private byte[] _data = [];
    private int _start, _end;
    private ReadOnlySequence<byte> _last;
    private bool _examinedAll = true, _writerDone, _readerDone, _waiting;

    /// <summary>The most unconsumed bytes the session ever held between reads: what it buffers.</summary>
    public int PeakUnconsumed { get; private set; }

    /// <summary>Reads the session has made that returned data.</summary>
    public int Reads { get; private set; }

    /// <summary>Queues one write; false once the session no longer reads (it closed).</summary>
    public bool Write(ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            if (_readerDone) return false;
            if (_writerDone) throw new InvalidOperationException("write after the client side was closed");
            if (bytes.IsEmpty) return true;
            _writes.Enqueue(bytes.ToArray());
            _waiting = false;
            _writeArrived?.TrySetResult();
            _writeArrived = null;
            return true;
        }
    }

    /// <summary>The client closes its side: once the session has read every write, its read says completed.</summary>
    public void CompleteWriting()
    {
        lock (_lock)
        {
            _writerDone = true;
            _writeArrived?.TrySetResult();
            _writeArrived = null;
        }
    }

    /// <summary>
    /// Completes once the session has read every write queued so far and waits for the next one (or
    /// stopped reading): the moment its state can be looked at without racing it.
    /// </summary>
    public Task WhenIdleAsync()
    {
        lock (_lock)
        {
            if (_readerDone || (_waiting && _writes.Count == 0)) return Task.CompletedTask;
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _idleWaiters.Add(tcs);
            return tcs.Task;
        }
    }

    public bool ReaderCompleted
    {
        get { lock (_lock) return _readerDone; }
    }

    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                if (_readerDone) throw new InvalidOperationException("read after complete");
                if (!_examinedAll && _end > _start) return Result(completed: false);
                if (_writes.TryDequeue(out var chunk))
                {
                    var data = new byte[_end - _start + chunk.Length];
                    _data.AsSpan(_start, _end - _start).CopyTo(data);
                    chunk.CopyTo(data, _end - _start);
                    (_data, _start, _end) = (data, 0, data.Length);
                    PeakUnconsumed = Math.Max(PeakUnconsumed, data.Length);
                    return Result(completed: false);
                }
                if (_writerDone) return Result(completed: true);
                _waiting = true;
                _writeArrived ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _writeArrived.Task;
                SignalIdle();
            }
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private ReadResult Result(bool completed)
    {
        Reads++;
        _examinedAll = false;
        _last = new ReadOnlySequence<byte>(_data, _start, _end - _start);
        return new ReadResult(_last, isCanceled: false, isCompleted: completed);
    }

    public override bool TryRead(out ReadResult result)
    {
        lock (_lock)
        {
            if (!_examinedAll && _end > _start) { result = Result(false); return true; }
            result = default;
            return false;
        }
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        lock (_lock)
        {
            var c = _start + (int)_last.Slice(_last.Start, consumed).Length;
            var e = _start + (int)_last.Slice(_last.Start, examined).Length;
            if (e < c) throw new InvalidOperationException("examined before consumed");
            _start = c;
            _examinedAll = e == _end;
            _last = default;
        }
    }

    public override void CancelPendingRead() => throw new NotSupportedException();

    public override void Complete(Exception? exception = null)
    {
        lock (_lock)
        {
            _readerDone = true;
            SignalIdle();
        }
    }

    private void SignalIdle()
    {
        foreach (var w in _idleWaiters) w.TrySetResult();
        _idleWaiters.Clear();
    }
}
