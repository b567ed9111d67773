// The parts the scheduler tests drive, shared by each test class: one or more QueueSchedulers
// (one per queue, sharing one DestinationThrottle) on real spools, real Maildirs and a real SMTP
// sink, with the clock in the test's hand (FakeTimeProvider) and the delivery log as lines to await.
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Sluice.Core.Configuration;
using Sluice.Core.Logging;
using Sluice.Core.Mail;
using Sluice.Delivery;
using Sluice.Delivery.Maildir;
using Sluice.Delivery.Smtp;
using Sluice.Queue;
using Sluice.Queue.Spool;
using Sluice.Testing;

namespace Sluice.Scheduling.Tests;

public abstract class SchedulerHarness : IAsyncLifetime
{
    private CancellationTokenSource _stop = new();
    private readonly List<QueueScheduler> _schedulers = [];
    private readonly List<Task> _todos = [];
    private readonly List<SmtpSink> _moreSinks = [];
    private DeliveryLog _log = null!;
    private Dictionary<string, IDeliveryAgent> _agents = null!;
    private ChannelMap _channels = null!;

    protected TempDirectory Dir { get; } = new();
    protected FakeTimeProvider Time { get; } = new(DateTimeOffset.Parse("2026-11-23T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    protected SmtpSink Sink { get; } = new();
    protected LogLines Lines { get; } = new();
    protected MailQueue Queue => Queues[0];
    protected List<MailQueue> Queues { get; } = [];
    protected DestinationThrottle Throttle { get; private set; } = null!;
    protected IReadOnlyList<QueueScheduler> Schedulers => _schedulers;
    protected const string Hostname = "mx.sluice.test";

    /// <summary>The defaults of these tests: every remote domain routed to <see cref="Sink"/>, a retry every minute.</summary>
    protected SluiceOptions DefaultOptions(TimeSpan lifetime)
    {
        var options = new SluiceOptions { Hostname = Hostname };
        options.Routes["*"] = $"127.0.0.1:{Sink.Port}";
        options.Retry.Schedule = [TimeSpan.FromMinutes(1)];
        options.Retry.MaxQueueLifetime = lifetime;
        return options;
    }

    protected void Start(TimeSpan lifetime) => Start(DefaultOptions(lifetime));

    protected void Start(SluiceOptions options, int queues = 1)
    {
        Open(options, queues);
        Deliver();
    }

    /// <summary>Opens the queues and their schedulers; mail accepted now waits until <see cref="Deliver"/>.</summary>
    protected void Open(SluiceOptions options, int queues)
    {
        _log ??= new DeliveryLog(Lines, null, Time);
        _agents = new()
        {
            ["maildir"] = new MaildirAgent(Dir.File("maildirs"), options.Hostname, new Sluice.Core.Mailboxes.MailboxMap(options), Time),
            // A domain no route covers is looked up on loopback only (port 9: nothing answers), never the system's resolver.
            ["smtp"] = new SmtpRelayAgent(new SmtpRoutes(options.Routes), new MxResolver(new DnsOptions { Servers = ["127.0.0.1:9"] }), options.Hostname, options.Delivery, Time),
        };
        Throttle = new DestinationThrottle(Time, _log.Write);
        _channels = new ChannelMap(options.Channels);
        for (int n = 1; n <= queues; n++)
        {
            var queue = new MailQueue(FileQueueStore.Open(n, Dir.File($"queue{n}"), 64L << 20, Time, _ => { }));
            Queues.Add(queue);
            _schedulers.Add(new QueueScheduler(queue, _channels, _agents, Throttle, new RetryPolicy(options.Retry), _log, Time, options.Hostname,
                $"postmaster@{options.Smtp.LocalDomains.FirstOrDefault() ?? options.Hostname}", options.Queue.ActiveMessages));
        }
    }

    /// <summary>Stops every stage as a shutdown does (deliveries in flight are not recorded), then opens them again on the same spools.</summary>
    protected async Task RestartAsync(SluiceOptions options)
    {
        var queues = Queues.Count;
        await StopStagesAsync();
        _stop = new CancellationTokenSource();
        Open(options, queues);
        Deliver();
    }

    private async Task StopStagesAsync()
    {
        foreach (var s in _schedulers) await s.DisposeAsync();
        await _stop.CancelAsync();
        try { await Task.WhenAll(_todos); } catch (OperationCanceledException) { }
        foreach (var q in Queues) await q.DisposeAsync();
        foreach (var a in _agents.Values) await a.DisposeAsync();
        Throttle.Dispose();
        _schedulers.Clear();
        _todos.Clear();
        Queues.Clear();
        _stop.Dispose();
    }

    /// <summary>Starts each queue's todo stage: what was accepted is split and handed to the schedulers.</summary>
    protected void Deliver()
    {
        for (int i = 0; i < Queues.Count; i++)
            _todos.Add(new Todo(Queues[i], _schedulers[i], _log).RunAsync(_stop.Token));
    }

    /// <summary>Another sink, disposed with the harness.</summary>
    protected SmtpSink NewSink(SessionGauge? alsoCountIn = null)
    {
        var sink = new SmtpSink(alsoCountIn);
        _moreSinks.Add(sink);
        return sink;
    }

    protected const string Message = "Subject: scheduled\r\nFrom: <x@y.test>\r\n\r\nbody\r\n";

    protected Task<QueuedMessage> Accept(string sender, string rcpt) => Accept(new Envelope(sender, [rcpt]));

    protected Task<QueuedMessage> Accept(Envelope envelope, string message = Message, int queue = 0) =>
        Queues[queue].AcceptAsync(envelope, null, System.Text.Encoding.UTF8.GetBytes(message), CancellationToken.None);

    /// <summary>The files delivered to a local mailbox so far.</summary>
    protected string[] Mailbox(string user)
    {
        var dir = Dir.File($"maildirs/{user}/new");
        return Directory.Exists(dir) ? Directory.GetFiles(dir) : [];
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await StopStagesAsync();
        await _log.DisposeAsync();
        await Sink.DisposeAsync();
        foreach (var s in _moreSinks) await s.DisposeAsync();
        Dir.Dispose();
    }

    /// <summary>The delivery log as the test sees it: lines to await.</summary>
    protected sealed class LogLines : StringWriter
    {
        private readonly Lock _lock = new();
        private readonly List<string> _lines = [];
        private readonly List<(string Fragment, TaskCompletionSource<string> Done)> _waiters = [];

        /// <summary>Called with each line as it is written, on the writer's thread.</summary>
        public Action<string>? Observer { get; set; }

        private readonly StringBuilder _partial = new();

        // The log writes its waiting lines in bursts: each '\n'-ended line is one line here.
        public override void Write(StringBuilder? value) => Write(value?.ToString());

        public override void Write(string? value)
        {
            if (value is null) return;
            _partial.Append(value);
            var text = _partial.ToString();
            var end = text.LastIndexOf('\n');
            if (end < 0) return;
            _partial.Remove(0, end + 1);
            foreach (var line in text[..end].Split('\n')) Add(line);
        }

        private void Add(string line)
        {
            Observer?.Invoke(line);
            lock (_lock)
            {
                _lines.Add(line);
                foreach (var w in _waiters.Where(w => line.Contains(w.Fragment, StringComparison.Ordinal)).ToList())
                {
                    w.Done.TrySetResult(line);
                    _waiters.Remove(w);
                }
            }
        }

        public int Count(string fragment)
        {
            lock (_lock) return _lines.Count(l => l.Contains(fragment, StringComparison.Ordinal));
        }

        /// <summary>The first line holding <paramref name="fragment"/>, once there is one.</summary>
        public Task<string> WaitForAsync(string fragment)
        {
            var done = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_lock)
            {
                if (_lines.FirstOrDefault(l => l.Contains(fragment, StringComparison.Ordinal)) is { } line) return Task.FromResult(line);
                _waiters.Add((fragment, done));
            }
            return done.Task.WaitAsync(TimeSpan.FromSeconds(15));
        }

        /// <summary>The first line holding <paramref name="fragment"/> after the <paramref name="nth"/> line holding <paramref name="marker"/>.</summary>
        public async Task<string> WaitForAfterAsync(string marker, int nth, string fragment)
        {
            while (true)
            {
                Task<string> next;
                lock (_lock)
                {
                    var seen = 0;
                    foreach (var l in _lines)
                    {
                        if (seen == nth && l.Contains(fragment, StringComparison.Ordinal)) return l;
                        if (seen < nth && l.Contains(marker, StringComparison.Ordinal)) seen++;
                    }
                    var done = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                    _waiters.Add((seen < nth ? marker : fragment, done));
                    next = done.Task;
                }
                await next.WaitAsync(TimeSpan.FromSeconds(15));
            }
        }

        /// <summary>The lines holding <paramref name="fragment"/>, once there are <paramref name="count"/> of them.</summary>
        public async Task<string[]> WaitForCountAsync(string fragment, int count)
        {
            while (true)
            {
                Task<string> next;
                lock (_lock)
                {
                    var found = _lines.Where(l => l.Contains(fragment, StringComparison.Ordinal)).ToArray();
                    if (found.Length >= count) return found;
                    var done = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                    _waiters.Add((fragment, done));
                    next = done.Task;
                }
                await next.WaitAsync(TimeSpan.FromSeconds(15));
            }
        }
    }
}
