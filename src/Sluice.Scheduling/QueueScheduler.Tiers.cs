// The two tiers of one queue (Postfix qmgr's active queue, KumoMTA's scheduled queue): every live
// message waits as a SpooledMessage (no envelope) in due-time order; at most ActiveMessages are
// active, with their envelope read back and their due recipients split into ready jobs. A message
// leaves the active tier when its jobs of this round are done, and waits for its next try.
// A destination that already has its share of the active tier gets no more: the messages that
// would only add to it are parked under it and come back as it drains, so one backlog never fills
// the active tier and starves another destination.
using System.Threading.Channels;
using Sluice.Queue;

namespace Sluice.Scheduling;

public sealed partial class QueueScheduler
{
    private readonly int _activeLimit;
    /// <summary>Ready and running jobs one destination may have before messages only for it are parked.</summary>
    private readonly int _destinationShare;
    private readonly PriorityQueue<SpooledMessage, DateTimeOffset> _waiting = new();
    private readonly Dictionary<string, Queue<SpooledMessage>> _parked = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, int> _jobsByDestination = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>Active messages and their jobs not yet done in this round.</summary>
    private readonly Dictionary<SpooledMessage, int> _openJobs = [];
    /// <summary>Active messages an outcome of which could not be recorded: left for the next start, not retried now.</summary>
    private readonly HashSet<SpooledMessage> _unrecorded = [];
    private readonly Channel<bool> _promote = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private Task _promoter = Task.CompletedTask;
    /// <summary>Active messages, counting those being read back.</summary>
    private int _active;

    /// <summary>Messages waiting for their next try, not in memory beyond their state.</summary>
    public int WaitingCount => Status().Waiting;

    /// <summary>Messages worked on now, envelope in memory (at most Queue.ActiveMessages).</summary>
    public int ActiveCount => Status().Active;

    /// <summary>Takes messages found in the spool at start: they wait in the first tier until due and admitted.</summary>
    public void Wait(IEnumerable<SpooledMessage> messages)
    {
        lock (_gate)
            foreach (var m in messages) Wait(m);
        _promote.Writer.TryWrite(true);
    }

    /// <summary>
    /// Queues a message in the first tier by when it may go: its earliest next attempt, but not before it
    /// was received, so retries that came due and new mail take turns in time order. Caller holds the lock.
    /// </summary>
    private void Wait(SpooledMessage m)
    {
        if (m.PendingRecipients == 0) return; // deleted or bounced by the operator
        if (m.Held)
        {
            _held.Add(m);
            return;
        }
        var due = m.Due;
        _waiting.Enqueue(m, due > m.ReceivedAt ? due : m.ReceivedAt);
    }

    /// <summary>Takes a newly accepted message: active at once if there is room, else it waits, due now.</summary>
    public void Admit(QueuedMessage m)
    {
        lock (_gate)
        {
            if (_active >= _activeLimit)
            {
                Wait(m.Spooled);
                return;
            }
            _active++;
        }
        Activate(m);
    }

    /// <summary>Moves waiting messages into the active tier, in due order, while there is room.</summary>
    private async Task PromoteAsync()
    {
        var ct = _stop.Token;
        while (await _promote.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            _promote.Reader.TryRead(out _);
            while (true)
            {
                SpooledMessage next;
                lock (_gate)
                {
                    if (_active >= _activeLimit || !_waiting.TryPeek(out next!, out var due)) break;
                    if (due > _time.GetUtcNow())
                    {
                        ArmTimer(due);
                        // The clock may have passed `due` while the timer was set (a timer set in the past may never fire).
                        if (due > _time.GetUtcNow()) break;
                        continue;
                    }
                    _waiting.Dequeue();
                    // Held or deleted while it waited: it leaves the queue of work here (Wait puts it aside).
                    if (next.Held || next.PendingRecipients == 0)
                    {
                        Wait(next);
                        continue;
                    }
                    _active++;
                }
                QueuedMessage loaded;
                try
                {
                    loaded = await _queue.Store.LoadAsync(next, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _log.Write($"warning: msg {next.Id}: cannot read its envelope back, left for the next start: {e.Message}");
                    lock (_gate) _active--;
                    continue;
                }
                Activate(loaded);
            }
        }
    }

    /// <summary>Splits an admitted message's due recipients into ready jobs, or parks it; its active place is counted.</summary>
    private void Activate(QueuedMessage m)
    {
        var jobs = DeliveryJob.Split(m, Channels, _time.GetUtcNow());
        lock (_gate)
        {
            for (int i = 0; i < jobs.Count; i++) jobs[i] = WithDestination(jobs[i]);
            if (jobs.Count == 0 || jobs.TrueForAll(j => _jobsByDestination.GetValueOrDefault(j.Destination) >= _destinationShare))
            {
                _active--;
                if (jobs.Count == 0) Wait(m.Spooled);
                else Park(jobs[0].Destination, m.Spooled);
                return;
            }
            _openJobs[m.Spooled] = jobs.Count;
            // Split outside the lock: a reload in between retired the channel these jobs name, so they go to its successor.
            foreach (var job in jobs)
                if (!ReassignedByReload(job)) AddReady(job);
        }
        StartJobs();
    }

    private void Park(string destination, SpooledMessage m)
    {
        if (!_parked.TryGetValue(destination, out var q)) _parked[destination] = q = new Queue<SpooledMessage>();
        q.Enqueue(m);
    }

    /// <summary>
    /// A job's round is over (delivered, deferred or failed, and recorded); the last one of its message
    /// returns the message to the first tier until its next try. Caller holds the lock.
    /// </summary>
    private void EndJob(DeliveryJob job)
    {
        var destination = job.Destination;
        var left = UncountJob(job);
        var resume = Math.Max(1, _destinationShare / 2);
        if (left < resume && _parked.TryGetValue(destination, out var parked))
        {
            for (int n = resume; n > 0 && parked.TryDequeue(out var m); n--) Wait(m);
            if (parked.Count == 0) _parked.Remove(destination);
        }
        var message = job.Message.Spooled;
        var open = _openJobs[message] - 1;
        if (open > 0)
        {
            _openJobs[message] = open;
            return;
        }
        _openJobs.Remove(message);
        _active--;
        if (!_unrecorded.Remove(message) && message.PendingRecipients > 0) Wait(message);
        _promote.Writer.TryWrite(true);
    }

    /// <summary>Counts a job for its destination's share; caller holds the lock.</summary>
    private void CountJob(DeliveryJob job) =>
        _jobsByDestination[job.Destination] = _jobsByDestination.GetValueOrDefault(job.Destination) + 1;

    /// <summary>Takes a job off its destination's count; returns the jobs left there. Caller holds the lock.</summary>
    private int UncountJob(DeliveryJob job)
    {
        var left = _jobsByDestination[job.Destination] - 1;
        if (left > 0) _jobsByDestination[job.Destination] = left;
        else _jobsByDestination.Remove(job.Destination);
        return left;
    }

    /// <summary>Makes every waiting and active message due now and lifts destination suspensions (`sluice queue flush`).</summary>
    public void Flush()
    {
        _throttle.ResumeAll();
        lock (_gate)
        {
            var waiting = _waiting.UnorderedItems.Select(w => w.Element).Concat(_parked.Values.SelectMany(q => q)).ToList();
            _waiting.Clear();
            _parked.Clear();
            foreach (var m in waiting.Concat(_openJobs.Keys)) m.MakeDue();
            foreach (var m in waiting) Wait(m);
        }
        _promote.Writer.TryWrite(true);
    }

    private void ArmTimer(DateTimeOffset due)
    {
        lock (_gate)
        {
            if (due >= _timerDue) return;
            _timerDue = due;
            _dueTimer.Change(Max(due - _time.GetUtcNow(), TimeSpan.Zero), Timeout.InfiniteTimeSpan);
        }
    }

    private void OnTimer()
    {
        lock (_gate) _timerDue = DateTimeOffset.MaxValue;
        _promote.Writer.TryWrite(true);
    }
}
