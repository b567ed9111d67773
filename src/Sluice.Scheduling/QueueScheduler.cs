// qmail-send for one queue, with the channels patch: per-channel concurrency (per queue),
// destinations served in turn so one backlog cannot starve another, the cross-queue destination
// limits (DestinationThrottle), two tiers of messages (QueueScheduler.Tiers.cs), retries, expiry and bounces.
// Under contention a channel of higher Priority starts first; channels of equal Priority take turns.
using Sluice.Core.Configuration;
using Sluice.Core.Logging;
using Sluice.Core.Mail;
using Sluice.Delivery;
using Sluice.Queue;
using Sluice.Scheduling.Bounces;
using Sluice.Scheduling.Scaling;

namespace Sluice.Scheduling;

public sealed partial class QueueScheduler : IAsyncDisposable
{
    private readonly MailQueue _queue;
    private readonly IReadOnlyDictionary<string, IDeliveryAgent> _agents;
    private readonly DestinationThrottle _throttle;
    private readonly RetryPolicy _retry;
    private readonly DeliveryLog _log;
    private readonly TimeProvider _time;
    private readonly DsnNotices _notices;
    /// <summary>Messages whose delay warning is being sent (the spool marks it once sent).</summary>
    private readonly HashSet<SpooledMessage> _warning = [];
    private readonly Lock _gate = new();
    private readonly List<ChannelSlots> _channels;
    private readonly ITimer _dueTimer;
    private readonly CancellationTokenSource _stop = new();
    private readonly HashSet<Task> _running = [];
    private DateTimeOffset _timerDue = DateTimeOffset.MaxValue;
    private long _starts;
    /// <summary>Delivery tries by outcome since start, indexed by <see cref="DeliveryStatus"/>.</summary>
    private readonly long[] _outcomes = new long[3];

    /// <summary>Where the numbers of "starting delivery N" come from: one source for every queue of a DataDir.</summary>
    public DeliveryNumbers Numbers { get; init; } = DeliveryNumbers.InMemory;

    /// <param name="postmaster">Where double bounces go; postmaster@<paramref name="hostname"/> if not given.</param>
    /// <param name="activeMessages">Messages worked on at once with their envelope in memory (Queue.ActiveMessages).</param>
    /// <param name="mailboxes">The mailbox map in force, to expand aliases a report is addressed to; none: reports are queued as addressed.</param>
    public QueueScheduler(MailQueue queue, ChannelMap channels, IReadOnlyDictionary<string, IDeliveryAgent> agentsByTransport,
        DestinationThrottle throttle, RetryPolicy retry, DeliveryLog log, TimeProvider time, string hostname, string? postmaster = null,
        int activeMessages = QueueOptions.DefaultActiveMessages, Func<Core.Mailboxes.MailboxMap?>? mailboxes = null)
    {
        _activeLimit = activeMessages;
        _destinationShare = Math.Max(1, activeMessages / 4);
        _queue = queue;
        _agents = agentsByTransport;
        _throttle = throttle;
        _retry = retry;
        _log = log;
        _time = time;
        _notices = new DsnNotices(queue, log, hostname, postmaster ?? $"postmaster@{hostname}", mailboxes ?? (() => null));
        _map = channels;
        _channels = [.. channels.Channels.Select(c => new ChannelSlots(c))];
        _dueTimer = time.CreateTimer(_ => OnTimer(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        throttle.CapacityAvailable += StartJobs;
        queue.Load = () => Load;
        _promoter = Task.Run(PromoteAsync);
    }

    /// <summary>The busiest channel's slots in use over its slots (<see cref="QueueScaling.LoadOf"/>); the Balancer and the Scaler both use it.</summary>
    public double Load
    {
        get
        {
            lock (_gate) return QueueScaling.LoadOf(_channels.Select(c => (c.InUse, c.Options.Concurrency)));
        }
    }

    private void StartJobs() => StartJobs(int.MinValue);

    /// <param name="floor">Start only channels of this priority or higher (the throttle offers capacity level by level).</param>
    private void StartJobs(int floor)
    {
        if (_stop.IsCancellationRequested) return;
        var started = new List<(DeliveryJob Job, bool Suspended)>();
        lock (_gate)
        {
            // Highest priority first; among equals, the one that started work least recently, so they take a shared destination in turn.
            foreach (var slots in _channels.OrderByDescending(c => c.Options.Priority).ThenBy(c => c.LastStart))
            {
                if (slots.Options.Priority < floor) break;
                while (slots.TryTake(_throttle, out var job, out var suspended))
                {
                    started.Add((job, suspended));
                    slots.LastStart = ++_starts;
                }
            }
        }
        foreach (var (job, suspended) in started)
        {
            var task = RunAsync(job, suspended);
            lock (_gate) _running.Add(task);
            _ = task.ContinueWith(t => { lock (_gate) _running.Remove(t); }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }
        if (started.Count > 0) LogStatus();
    }

    /// <param name="suspended">The destination is suspended: defer the recipients without trying it.</param>
    private async Task RunAsync(DeliveryJob job, bool suspended)
    {
        await Task.Yield(); // never deliver on the caller's stack (it holds no lock, but may be the session)
        var m = job.Message;
        var outcome = DestinationOutcome.Unknown;
        var error = "";
        try
        {
            // Held, deleted or bounced by the operator since the job was made: it is dropped, not delivered.
            if (WithoutWithdrawn(job) is not { } still) return;
            job = still;
            // A shared queue: another node holds the message now (it was dropped here), or this node's lease lapsed and it waits.
            if (!await _queue.Store.MayDeliverAsync(m.Spooled, _stop.Token).ConfigureAwait(false)) return;
            var ids = new long[job.Recipients.Length];
            var body = await _queue.Store.ReadBodyAsync(m, _stop.Token).ConfigureAwait(false);
            var recipients = job.Recipients.Select(i => m.Recipients[i]).ToArray();
            for (int i = 0; i < ids.Length; i++)
            {
                ids[i] = Numbers.Next();
                _log.Write($"starting delivery {ids[i]}: msg {m.Id} to {job.Channel.Name} {recipients[i]}");
            }
            RecipientResult[] results;
            if (suspended)
            {
                var notice = RecipientResult.Deferred(_throttle.SuspensionNotice(job.Destination));
                results = [.. recipients.Select(_ => notice)];
            }
            else
            {
                try
                {
                    var request = new DeliveryRequest(m.Id, m.Sender, recipients, job.Domain, body)
                    {
                        Envelope = m.Envelope,
                        Dsn = m.Envelope.Dsn is null ? null : [.. job.Recipients.Select(m.Envelope.DsnOf)],
                    };
                    results = await _agents[job.Channel.Transport].DeliverAsync(request, _stop.Token).ConfigureAwait(false);
                    (outcome, error) = results.FirstOrDefault(r => r.DestinationUnavailable) is { } failed
                        ? (DestinationOutcome.Unavailable, failed.Text) : (DestinationOutcome.Reached, "");
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    results = [.. recipients.Select(_ => RecipientResult.Deferred($"451 4.3.0 delivery agent error: {e.Message}"))];
                }
            }
            ChannelSlots slots;
            lock (_gate) slots = SlotsFor(job.Channel);
            for (int i = 0; i < ids.Length; i++)
            {
                var word = results[i].Status switch { DeliveryStatus.Delivered => "success", DeliveryStatus.Deferred => "deferral", _ => "failure" };
                Interlocked.Increment(ref _outcomes[(int)results[i].Status]);
                Interlocked.Increment(ref slots.Outcomes[(int)results[i].Status]);
                _log.Write($"delivery {ids[i]}: {word}: {results[i].Text}");
            }
            await RecordAsync(job, results, body).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Stopping: nothing recorded, so the recipients are tried again after restart.
        }
        catch (Exception e) when (e is not OperationCanceledException || !_stop.IsCancellationRequested)
        {
            // The outcome could not be recorded; a later start tries these recipients again (not now: that could loop).
            _log.Write($"warning: msg {m.Id}: cannot record delivery outcome: {e.Message}");
            lock (_gate) _unrecorded.Add(m.Spooled);
        }
        finally
        {
            lock (_gate)
            {
                SlotsFor(job.Channel).InUse--;
                EndJob(job);
            }
            if (suspended) StartJobs(); // no destination slot was taken; the channel slot is free again
            else _throttle.Release(job.Destination, job.Channel, outcome, error);
            LogStatus();
        }
    }

    private async Task RecordAsync(DeliveryJob job, RecipientResult[] results, byte[] body)
    {
        var m = job.Message;
        var now = _time.GetUtcNow();
        var expired = _retry.Expired(m.ReceivedAt, now);
        var delivered = new List<(int Index, RecipientResult Result)>();
        var failures = new List<DsnNotices.Failure>();
        var deferred = new List<(int Index, string Text, RemoteReply? Remote)>();
        for (int i = 0; i < results.Length; i++)
        {
            var index = job.Recipients[i];
            var r = results[i];
            if (r.Status == DeliveryStatus.Delivered) delivered.Add((index, r));
            else if (r.Status == DeliveryStatus.Failed || expired)
            {
                // An expiry is our decision, not the next hop's: its report has our diagnostic, not the last reply's.
                var text = r.Status == DeliveryStatus.Failed ? r.Text
                    : $"message expired after {BounceMessage.FormatAge(now - m.ReceivedAt)} in the queue; last error: {r.Text}";
                failures.Add(new(index, text, BounceMessage.StatusOf(text, r.Status != DeliveryStatus.Failed), r.Status == DeliveryStatus.Failed ? r.Remote : null));
            }
            else deferred.Add((index, r.Text, r.Remote));
        }
        // Each DSN is durable before the outcomes it reports: a crash between them repeats a DSN, never loses one.
        await _notices.SucceededAsync(m, body, delivered, now, _stop.Token).ConfigureAwait(false);
        foreach (var (index, r) in delivered)
            await _queue.Store.RecordAsync(m, index, RecipientStatus.Delivered, DateTimeOffset.MinValue, r.Text, _stop.Token).ConfigureAwait(false);
        await _notices.FailedAsync(m, body, failures, now, _stop.Token).ConfigureAwait(false);
        foreach (var f in failures)
            await _queue.Store.RecordAsync(m, f.Index, RecipientStatus.Failed, DateTimeOffset.MinValue, f.Text, _stop.Token).ConfigureAwait(false);
        if (deferred.Count > 0 && m.Sender.Length > 0 && _retry.DueForDelayWarning(m.ReceivedAt, now) && BeginDelayWarning(m.Spooled))
        {
            // One warning per message, on the deferrals known now: this job's and the other recipients' last ones.
            var others = Enumerable.Range(0, m.Recipients.Count)
                .Where(i => !job.Recipients.Contains(i) && m.States[i] is { Status: RecipientStatus.Pending, LastError: not null })
                .Select(i => (i, m.States[i].LastError!, RemoteReply.FromText(m.States[i].LastError!)));
            try
            {
                // Sent, then marked: a crash between the two repeats the warning, never loses it.
                await _notices.DelayedAsync(m, body, [.. deferred, .. others], now, _stop.Token).ConfigureAwait(false);
                await _queue.Store.RecordDelayWarningAsync(m, _stop.Token).ConfigureAwait(false);
            }
            finally
            {
                lock (_gate) _warning.Remove(m.Spooled); // if not sent, the next deferral tries again
            }
        }
        if (deferred.Count > 0)
        {
            var attempts = deferred.Max(d => m.States[d.Index].Attempts) + 1;
            var next = now + _retry.Delay(attempts);
            foreach (var (index, text, _) in deferred)
                await _queue.Store.RecordAsync(m, index, RecipientStatus.Pending, next, text, _stop.Token).ConfigureAwait(false);
        }
        if (m.PendingRecipients == 0) _log.Write($"end msg {m.Id}");
    }

    private bool BeginDelayWarning(SpooledMessage m)
    {
        lock (_gate) return !m.DelayWarned && _warning.Add(m);
    }

    private void LogStatus()
    {
        string line;
        lock (_gate) line = string.Join(" ", _channels.Select(c => $"{c.Options.Name} {c.InUse}/{c.Options.Concurrency}"));
        _log.Write($"status: {_queue.Name} {line}");
    }

    private ChannelSlots SlotsFor(ChannelOptions channel) =>
        _channels.FirstOrDefault(c => c.Options.Name == channel.Name) ?? _retiredChannels.First(c => c.Options.Name == channel.Name);

    /// <summary>The job with its destination, asked of the agent now (routes decide it).</summary>
    private DeliveryJob WithDestination(DeliveryJob job) =>
        job with { Destination = _agents.TryGetValue(job.Channel.Transport, out var agent) ? agent.DestinationOf(job.Domain) : job.Domain };

    /// <summary>Queues a due job under its destination, asked of the agent now; caller holds the lock.</summary>
    private void MakeReady(DeliveryJob job)
    {
        if (!ReassignedByReload(job)) AddReady(WithDestination(job));
    }

    /// <summary>Queues a job whose destination is set and counts it there; caller holds the lock.</summary>
    private void AddReady(DeliveryJob job)
    {
        CountJob(job);
        SlotsFor(job.Channel).Add(job);
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    public async ValueTask DisposeAsync()
    {
        _throttle.CapacityAvailable -= StartJobs;
        await _stop.CancelAsync().ConfigureAwait(false);
        await _dueTimer.DisposeAsync().ConfigureAwait(false);
        try
        {
            await _promoter.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
        Task[] running;
        lock (_gate) running = [.. _running];
        await Task.WhenAll(running).ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>One channel's ready jobs, kept per destination and served in turn (round robin).</summary>
    private sealed partial class ChannelSlots(ChannelOptions options)
    {
        private readonly Dictionary<string, Queue<DeliveryJob>> _ready = new(StringComparer.OrdinalIgnoreCase);
        private readonly Queue<string> _turns = new();

        public ChannelOptions Options { get; set; } = options;
        public int InUse { get; set; }
        /// <summary>Delivery tries through this channel since start, indexed by <see cref="DeliveryStatus"/>.</summary>
        public long[] Outcomes { get; } = new long[3];
        /// <summary>When this channel last started a job, in the scheduler's count of starts.</summary>
        public long LastStart { get; set; }

        public void Add(DeliveryJob job)
        {
            if (!_ready.TryGetValue(job.Destination, out var q))
            {
                _ready[job.Destination] = q = new Queue<DeliveryJob>();
                _turns.Enqueue(job.Destination);
            }
            q.Enqueue(job);
        }

        /// <summary>
        /// Takes the next job whose destination has a free slot, or is suspended (then the job is to be
        /// deferred without a try); caller holds the scheduler lock.
        /// </summary>
        public bool TryTake(DestinationThrottle throttle, out DeliveryJob job, out bool suspended)
        {
            job = null!;
            suspended = false;
            for (int tries = _turns.Count; InUse < Options.Concurrency && tries > 0; tries--)
            {
                var destination = _turns.Dequeue();
                var admission = throttle.TryAcquire(destination, Options);
                if (admission == Admission.Busy)
                {
                    _turns.Enqueue(destination);
                    continue;
                }
                suspended = admission == Admission.Suspended;
                var q = _ready[destination];
                job = q.Dequeue();
                if (q.Count > 0) _turns.Enqueue(destination);
                else _ready.Remove(destination);
                InUse++;
                return true;
            }
            return false;
        }
    }
}
