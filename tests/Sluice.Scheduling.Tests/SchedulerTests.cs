// Retries, bounces and expiry with the clock driven by the test (FakeTimeProvider), against a
// real spool, a real SMTP sink and real Maildirs.
using System.Collections.Concurrent;
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

public sealed class SchedulerTests : IAsyncLifetime
{
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-23T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly SmtpSink _sink = new();
    private readonly LogLines _lines = new();
    private readonly CancellationTokenSource _stop = new();
    private DeliveryLog _log = null!;
    private MailQueue _queue = null!;
    private QueueScheduler _scheduler = null!;
    private Dictionary<string, IDeliveryAgent> _agents = null!;
    private Task _todo = Task.CompletedTask;

    private void Start(TimeSpan lifetime)
    {
        var options = new SluiceOptions { Hostname = "mx.sluice.test" };
        options.Routes["*"] = $"127.0.0.1:{_sink.Port}";
        options.Retry.Schedule = [TimeSpan.FromMinutes(1)];
        options.Retry.MaxQueueLifetime = lifetime;
        _log = new DeliveryLog(_lines, null, _time);
        _queue = new MailQueue(FileQueueStore.Open(1, _dir.File("queue1"), 64L << 20, _time, _ => { }));
        _agents = new()
        {
            ["maildir"] = new MaildirAgent(_dir.File("maildirs"), options.Hostname, _time),
            ["smtp"] = new SmtpRelayAgent(new SmtpRoutes(options.Routes), options.Hostname, options.Delivery, _time),
        };
        var channels = new ChannelMap(options.Channels);
        _scheduler = new QueueScheduler(_queue, channels, _agents, new DestinationThrottle(), new RetryPolicy(options.Retry), _log, _time, options.Hostname);
        _todo = new Todo(_queue, channels, _scheduler, _log).RunAsync(_stop.Token);
    }

    private Task<QueuedMessage> Accept(string sender, string rcpt) =>
        _queue.AcceptAsync(new Envelope(sender, [rcpt]), "Subject: scheduled\r\nFrom: <x@y.test>\r\n\r\nbody\r\n"u8.ToArray(), CancellationToken.None);

    [Fact]
    public async Task A_deferred_recipient_is_retried_when_its_time_comes_and_not_before()
    {
        Start(TimeSpan.FromDays(1));
        var replies = new ConcurrentQueue<string>(["451 4.3.0 try later"]);
        _sink.DataReply = _ => replies.TryDequeue(out var r) ? r : "250 2.0.0 ok";
        var m = await Accept("a@remote.test", "b@remote.test");
        await _lines.WaitForAsync("deferral: 127.0.0.1");
        await _lines.WaitForAsync("remote 0/"); // the slot is given back only after the outcome is durable
        Assert.Equal(1, m.States[0].Attempts);
        Assert.Contains("451 4.3.0 try later", m.States[0].LastError, StringComparison.Ordinal);
        Assert.True(m.States[0].NextAttempt > _time.GetUtcNow().AddSeconds(50), "retry follows Retry.Schedule (1m ± 10 %)");
        Assert.Empty(_sink.Messages);

        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(1, _lines.Count("starting delivery"));
        _time.Advance(TimeSpan.FromSeconds(40));
        await _sink.WaitForCountAsync(1, TimeSpan.FromSeconds(10));
        await _lines.WaitForAsync($"end msg {m.Id}");
        Assert.Equal(0, _queue.Store.MessageCount);
    }

    [Fact]
    public async Task A_permanent_failure_bounces_a_DSN_to_the_sender()
    {
        Start(TimeSpan.FromDays(1));
        _sink.DataReply = _ => "550 5.1.1 no such user";
        var m = await Accept("alice@localhost", "bob@remote.test");
        await _lines.WaitForAsync("failure: 127.0.0.1");
        await _lines.WaitForAsync("to local alice@localhost");
        await _lines.WaitForAsync("delivery 2: success");
        var dsn = await File.ReadAllTextAsync(Assert.Single(Directory.GetFiles(_dir.File("maildirs/alice/new"))));
        Assert.Contains("Return-Path: <>", dsn, StringComparison.Ordinal);
        Assert.Contains("report-type=delivery-status", dsn, StringComparison.Ordinal);
        Assert.Contains("Final-Recipient: rfc822; bob@remote.test", dsn, StringComparison.Ordinal);
        Assert.Contains("Status: 5.1.1", dsn, StringComparison.Ordinal);
        Assert.Contains("Subject: scheduled", dsn, StringComparison.Ordinal);
        Assert.Equal(RecipientStatus.Failed, m.States[0].Status);
    }

    [Fact]
    public async Task A_recipient_still_deferred_after_the_queue_lifetime_expires_into_a_bounce()
    {
        Start(TimeSpan.FromMinutes(10));
        _sink.DataReply = _ => "451 4.7.1 greylisted";
        var m = await Accept("carol@localhost", "dan@remote.test");
        await _lines.WaitForAsync("deferral: 127.0.0.1");
        await _lines.WaitForAsync("remote 0/"); // the slot is given back only after the outcome is durable
        _time.Advance(TimeSpan.FromMinutes(11));
        await _lines.WaitForAsync($"bounce msg {m.Id}");
        await _lines.WaitForAsync("to local carol@localhost");
        await _lines.WaitForAsync($"end msg {m.Id}");
        Assert.Equal(RecipientStatus.Failed, m.States[0].Status);
        Assert.Contains("expired after", m.States[0].LastError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failed_bounce_is_not_bounced_again()
    {
        Start(TimeSpan.FromDays(1));
        _sink.DataReply = _ => "550 5.7.1 go away";
        var m = await Accept("", "erin@remote.test");
        await _lines.WaitForAsync($"triple bounce: discarding bounce msg {m.Id}");
        await _lines.WaitForAsync($"end msg {m.Id}");
        Assert.Equal(0, _queue.Store.MessageCount);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _scheduler.DisposeAsync();
        await _stop.CancelAsync();
        try { await _todo; } catch (OperationCanceledException) { }
        await _queue.DisposeAsync();
        foreach (var a in _agents.Values) await a.DisposeAsync();
        await _log.DisposeAsync();
        await _sink.DisposeAsync();
        _dir.Dispose();
    }

    /// <summary>The delivery log as the test sees it: lines to await.</summary>
    private sealed class LogLines : StringWriter
    {
        private readonly Lock _lock = new();
        private readonly List<string> _lines = [];
        private readonly List<(string Fragment, TaskCompletionSource Done)> _waiters = [];

        public override void Write(string? value)
        {
            if (value is null) return;
            lock (_lock)
            {
                _lines.Add(value);
                foreach (var w in _waiters.Where(w => value.Contains(w.Fragment, StringComparison.Ordinal)).ToList())
                {
                    w.Done.TrySetResult();
                    _waiters.Remove(w);
                }
            }
        }

        public int Count(string fragment)
        {
            lock (_lock) return _lines.Count(l => l.Contains(fragment, StringComparison.Ordinal));
        }

        public Task WaitForAsync(string fragment)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_lock)
            {
                if (_lines.Any(l => l.Contains(fragment, StringComparison.Ordinal))) return Task.CompletedTask;
                _waiters.Add((fragment, done));
            }
            return done.Task.WaitAsync(TimeSpan.FromSeconds(15));
        }
    }
}
