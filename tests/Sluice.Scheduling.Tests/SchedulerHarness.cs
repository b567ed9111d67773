// The parts the scheduler tests drive, shared by each test class: a QueueScheduler on a real
// spool, real Maildirs and a real SMTP sink (every remote domain routes there), with the clock
// in the test's hand (FakeTimeProvider) and the delivery log as lines to await.
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
    private readonly CancellationTokenSource _stop = new();
    private DeliveryLog _log = null!;
    private QueueScheduler _scheduler = null!;
    private Dictionary<string, IDeliveryAgent> _agents = null!;
    private Task _todo = Task.CompletedTask;

    protected TempDirectory Dir { get; } = new();
    protected FakeTimeProvider Time { get; } = new(DateTimeOffset.Parse("2026-11-23T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    protected SmtpSink Sink { get; } = new();
    protected LogLines Lines { get; } = new();
    protected MailQueue Queue { get; private set; } = null!;
    protected const string Hostname = "mx.sluice.test";

    protected void Start(TimeSpan lifetime)
    {
        var options = new SluiceOptions { Hostname = Hostname };
        options.Routes["*"] = $"127.0.0.1:{Sink.Port}";
        options.Retry.Schedule = [TimeSpan.FromMinutes(1)];
        options.Retry.MaxQueueLifetime = lifetime;
        _log = new DeliveryLog(Lines, null, Time);
        Queue = new MailQueue(FileQueueStore.Open(1, Dir.File("queue1"), 64L << 20, Time, _ => { }));
        _agents = new()
        {
            ["maildir"] = new MaildirAgent(Dir.File("maildirs"), options.Hostname, Time),
            ["smtp"] = new SmtpRelayAgent(new SmtpRoutes(options.Routes), options.Hostname, options.Delivery, Time),
        };
        var channels = new ChannelMap(options.Channels);
        _scheduler = new QueueScheduler(Queue, channels, _agents, new DestinationThrottle(), new RetryPolicy(options.Retry), _log, Time, options.Hostname);
        _todo = new Todo(Queue, channels, _scheduler, _log).RunAsync(_stop.Token);
    }

    protected const string Message = "Subject: scheduled\r\nFrom: <x@y.test>\r\n\r\nbody\r\n";

    protected Task<QueuedMessage> Accept(string sender, string rcpt) => Accept(new Envelope(sender, [rcpt]));

    protected Task<QueuedMessage> Accept(Envelope envelope, string message = Message) =>
        Queue.AcceptAsync(envelope, System.Text.Encoding.UTF8.GetBytes(message), CancellationToken.None);

    /// <summary>The files delivered to a local mailbox so far.</summary>
    protected string[] Mailbox(string user)
    {
        var dir = Dir.File($"maildirs/{user}/new");
        return Directory.Exists(dir) ? Directory.GetFiles(dir) : [];
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _scheduler.DisposeAsync();
        await _stop.CancelAsync();
        try { await _todo; } catch (OperationCanceledException) { }
        await Queue.DisposeAsync();
        foreach (var a in _agents.Values) await a.DisposeAsync();
        await _log.DisposeAsync();
        await Sink.DisposeAsync();
        Dir.Dispose();
        _stop.Dispose();
    }

    /// <summary>The delivery log as the test sees it: lines to await.</summary>
    protected sealed class LogLines : StringWriter
    {
        private readonly Lock _lock = new();
        private readonly List<string> _lines = [];
        private readonly List<(string Fragment, TaskCompletionSource<string> Done)> _waiters = [];

        public override void Write(string? value)
        {
            if (value is null) return;
            lock (_lock)
            {
                _lines.Add(value);
                foreach (var w in _waiters.Where(w => value.Contains(w.Fragment, StringComparison.Ordinal)).ToList())
                {
                    w.Done.TrySetResult(value);
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
    }
}
