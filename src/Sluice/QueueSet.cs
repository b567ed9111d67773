// The Scaler (indimail's qscheduler with qmonitor and setqload): the queues of a running server, each
// with its own todo and scheduler. Every few seconds it samples their load and applies QueueScaling's
// step: open the next queue, or retire one. A retiring queue leaves the Balancer, drains what it holds,
// and is closed and removed only once empty; a restart in between finds it on disk and drains it again.
using Sluice.Core.Logging;
using Sluice.Queue;
using Sluice.Scheduling;
using Sluice.Scheduling.Scaling;

namespace Sluice;

internal sealed class QueueSet : IAsyncDisposable
{
    private sealed class Member(MailQueue queue, QueueScheduler scheduler, Task todo, DateTimeOffset now)
    {
        public MailQueue Queue => queue;
        public QueueScheduler Scheduler => scheduler;
        public Task Todo => todo;
        public DateTimeOffset LastLoaded { get; set; } = now;
    }

    private readonly SortedDictionary<int, Member> _members = [];
    private readonly Lock _gate = new();
    private readonly IQueueStoreFactory _stores;
    private readonly Func<MailQueue, QueueScheduler> _schedule;
    private readonly int _start;
    private readonly DeliveryLog _log;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private QueueSettings _settings;
    private Task _scaler = Task.CompletedTask;

    /// <param name="schedule">Makes a queue's scheduler (with the channels in force now).</param>
    public QueueSet(QueueSettings settings, int start, IQueueStoreFactory stores, Func<MailQueue, QueueScheduler> schedule, DeliveryLog log, TimeProvider time)
    {
        _settings = settings;
        _start = start;
        _stores = stores;
        _schedule = schedule;
        _log = log;
        _time = time;
    }

    public Balancer Balancer { get; } = new([]);

    /// <summary>False on a receive-only node: its queues take mail for the nodes that deliver, and their schedulers get none.</summary>
    public bool Delivers { get; init; } = true;

    /// <summary>How often load is sampled and a step taken (qmonitor's interval).</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(5);

    public QueueSettings Settings
    {
        get
        {
            lock (_gate) return _settings;
        }
    }

    public IReadOnlyList<QueueScheduler> Schedulers
    {
        get
        {
            lock (_gate) return [.. _members.Values.Select(m => m.Scheduler)];
        }
    }

    /// <summary>Queues that deliver what they hold but take no new mail (retiring, disabled, or left on disk from a larger count).</summary>
    public IReadOnlyList<string> Draining
    {
        get
        {
            lock (_gate) return [.. _members.Values.Where(m => !m.Queue.TakesNewMail).Select(m => m.Queue.Name)];
        }
    }

    /// <summary>Opens every queue at start: Start..Start+Count-1 take mail, any other the store holds mail in drains.</summary>
    public void OpenAtStart()
    {
        var taking = Enumerable.Range(_start, _settings.Count).ToHashSet();
        foreach (var number in _stores.Numbers(taking))
        {
            var member = Open(number);
            var store = member.Queue.Store;
            _log.Write($"{member.Queue.Name}: {store.MessageCount} messages, {store.RecipientCount} recipients recovered"
                + (taking.Contains(number) ? "" : " (outside Queue.Start/Count: draining, takes no new mail)"));
            if (taking.Contains(number)) Balancer.Add(member.Queue);
            else _ = member.Queue.StopTakingNewMailAsync();
        }
        _scaler = Task.Run(ScaleAsync);
    }

    private Member Open(int number)
    {
        var queue = new MailQueue(_stores.Open(number));
        var scheduler = _schedule(queue);
        var member = new Member(queue, scheduler, new Todo(queue, scheduler, _log, Delivers).RunAsync(_stop.Token), _time.GetUtcNow());
        lock (_gate) _members.Add(number, member);
        return member;
    }

    /// <summary>setqload: new count, max or load; null keeps a value. Returns why not, or null when applied.</summary>
    public string? Change(bool? dynamic, int? count, int? max, double? load, TimeSpan? idleRetire)
    {
        QueueSettings next;
        lock (_gate)
        {
            next = _settings with
            {
                Dynamic = dynamic ?? _settings.Dynamic, Count = count ?? _settings.Count, Max = max ?? _settings.Max,
                Load = load ?? _settings.Load, IdleRetire = idleRetire ?? _settings.IdleRetire,
            };
            if (next.Problem() is { } problem) return problem;
            if (next == _settings) return null;
            _settings = next;
        }
        _log.Write($"scaler: settings now {Describe(next)}");
        return null;
    }

    /// <summary>setqload --disable: the queue stops taking mail, drains and retires; another opens if fewer than Count remain.</summary>
    public string? Disable(int number)
    {
        Member? member;
        lock (_gate)
        {
            if (!_members.TryGetValue(number, out member)) return $"queue{number} is not open";
            if (!member.Queue.TakesNewMail) return null;
        }
        // A replacement first when this one was the last taking mail, so there is never a moment without a queue.
        if (Balancer.Queues.Count == 1)
        {
            try
            {
                Balancer.Add(OpenNext().Queue);
            }
            catch (IOException e)
            {
                return $"queue{number} is the last taking mail and no queue could be opened to replace it: {e.Message}";
            }
        }
        Retire(member, "disabled by the operator");
        return null;
    }

    private void Retire(Member member, string reason)
    {
        Balancer.Remove(member.Queue);
        _ = member.Queue.StopTakingNewMailAsync(); // acceptances begun finish first; the queue closes only once drained
        _log.Write($"scaler: {member.Queue.Name} retiring ({reason}): takes no new mail, drains {member.Queue.Store.MessageCount} messages");
    }

    private async Task ScaleAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Interval, _time, _stop.Token).ConfigureAwait(false);
                await StepAsync().ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A queue that cannot be opened or removed now is tried again at the next step; mail keeps flowing in the others.
                _log.Write($"scaler: warning: {e.Message}");
            }
        }
    }

    /// <summary>One sample and at most one step: close drained retiring queues, then grow or retire by one.</summary>
    private async Task StepAsync()
    {
        var now = _time.GetUtcNow();
        List<Member> drained = [];
        List<QueueSample> taking = [];
        QueueSettings settings;
        lock (_gate)
        {
            settings = _settings;
            foreach (var (number, m) in _members)
            {
                var load = m.Scheduler.Load;
                if (load > 0) m.LastLoaded = now;
                if (m.Queue.TakesNewMail) taking.Add(new(number, load, now - m.LastLoaded));
                else if (m.Scheduler.IsIdle) drained.Add(m);
            }
        }
        foreach (var m in drained) await CloseAsync(m).ConfigureAwait(false);
        var step = QueueScaling.Next(settings, taking);
        if (step.Action == ScaleAction.Grow)
        {
            var member = OpenNext();
            Balancer.Add(member.Queue);
            _log.Write($"scaler: {member.Queue.Name} added ({step.Reason})");
        }
        else if (step.Action == ScaleAction.Retire)
        {
            Member member;
            lock (_gate) member = _members[step.Queue];
            Retire(member, step.Reason);
        }
    }

    /// <summary>
    /// Opens the lowest queue number from Start not open here (a retired queue's number is used again). A number the store
    /// will not open now is passed over for the next, a few times at most.
    /// </summary>
    private Member OpenNext()
    {
        const int Tries = 16;
        var n = _start;
        for (var tried = 1; ; tried++, n++)
        {
            lock (_gate)
                while (_members.ContainsKey(n)) n++;
            try
            {
                return Open(n);
            }
            catch (IOException e) when (tried < Tries)
            {
                _log.Write($"scaler: queue{n} cannot be opened here ({e.Message}); trying the next number");
            }
        }
    }

    /// <summary>An empty retiring queue: stop its stages, then let the store take its place away.</summary>
    private async Task CloseAsync(Member m)
    {
        await m.Scheduler.DisposeAsync().ConfigureAwait(false);
        await m.Queue.DisposeAsync().ConfigureAwait(false);
        await m.Todo.ConfigureAwait(false);
        lock (_gate) _members.Remove(m.Queue.Number);
        _stores.Remove(m.Queue.Number);
        _log.Write($"scaler: {m.Queue.Name} retired");
    }

    private static string Describe(QueueSettings s) => FormattableString.Invariant(
        $"{(s.Dynamic ? "dynamic" : "fixed")} count {s.Count} max {s.Max} load {s.Load:0.00} idle-retire {s.IdleRetire.TotalSeconds:0}s");

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _scaler.ConfigureAwait(false);
        List<Member> members;
        lock (_gate) members = [.. _members.Values];
        foreach (var m in members) await m.Scheduler.DisposeAsync().ConfigureAwait(false);
        try { await Task.WhenAll(members.Select(m => m.Todo)).ConfigureAwait(false); } catch (OperationCanceledException) { }
        foreach (var m in members) await m.Queue.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
