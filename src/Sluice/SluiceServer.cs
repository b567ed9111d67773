// The composition root of `sluice serve`: Receive → Balancer → Queue[k] → Todo[k] → Scheduler[k]
// → Deliver, wired in that order and stopped in that order.
using System.Net;
using Sluice.Core.Configuration;
using Sluice.Core.Logging;
using Sluice.Delivery;
using Sluice.Delivery.Maildir;
using Sluice.Delivery.Smtp;
using Sluice.Queue;
using Sluice.Queue.Spool;
using Sluice.Receive;
using Sluice.Receive.Auth;
using Sluice.Receive.Tls;
using Sluice.Scheduling;

namespace Sluice;

internal sealed class SluiceServer : IAsyncDisposable
{
    private readonly List<MailQueue> _queues = [];
    private readonly List<QueueScheduler> _schedulers = [];
    private readonly List<Task> _todos = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<string, IDeliveryAgent> _agents;
    private readonly DeliveryLog _log;
    private SmtpListener? _listener;
    private DestinationThrottle? _throttle;

    private SluiceServer(SluiceOptions options, DeliveryLog log, TimeProvider time)
    {
        _log = log;
        _agents = new()
        {
            [ChannelOptions.MaildirTransport] = new MaildirAgent(options.MailboxRoot, options.Hostname, time),
            [ChannelOptions.SmtpTransport] = new SmtpRelayAgent(new SmtpRoutes(options.Routes), options.Hostname, options.Delivery, time),
        };
    }

    public IReadOnlyList<EndPoint> SmtpEndpoints => _listener?.LocalEndpoints ?? [];

    public static SluiceServer Start(SluiceOptions options, DeliveryLog log, TimeProvider time)
    {
        var server = new SluiceServer(options, log, time);
        try
        {
            server.StartStages(options, time);
            return server;
        }
        catch
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
    }

    private void StartStages(SluiceOptions options, TimeProvider time)
    {
        var channels = new ChannelMap(options.Channels);
        var throttle = _throttle = new DestinationThrottle(time, _log.Write);
        var retry = new RetryPolicy(options.Retry);
        var active = Enumerable.Range(options.Queue.Start, options.Queue.Count).ToHashSet();
        foreach (var number in QueueLayout.Numbers(options.QueueBase, active))
        {
            var store = FileQueueStore.Open(number, QueueLayout.PathOf(options.QueueBase, number), options.Queue.SegmentBytes.Bytes, time, _log.Write);
            var queue = new MailQueue(store);
            _queues.Add(queue);
            var scheduler = new QueueScheduler(queue, channels, _agents, throttle, retry, _log, time, options.Hostname);
            _schedulers.Add(scheduler);
            _todos.Add(new Todo(queue, channels, scheduler, _log).RunAsync(_stop.Token));
            _log.Write($"{queue.Name}: {store.MessageCount} messages, {store.RecipientCount} recipients recovered"
                + (active.Contains(number) ? "" : " (outside Queue.Start/Count: draining, takes no new mail)"));
        }
        var balancer = new Balancer([.. _queues.Where(q => active.Contains(q.Number))]);
        _listener = new SmtpListener(ReceiveContext(options, balancer, time),
            new ConnectionLimits(options.Smtp.MaxConnections, options.Smtp.MaxConnectionsPerClient), _log);
        _listener.Start(options.Smtp.Listen.Select(l =>
            Endpoints.TryParseSmtpListen(l, out var ep, out var role) ? (ep, role) : throw new ConfigurationException($"Smtp:Listen: {l}")));
        _log.Write($"sluice: started with {active.Count} queues under {options.QueueBase}");
    }

    private SessionContext ReceiveContext(SluiceOptions options, IMessageAcceptor acceptor, TimeProvider time) => new()
    {
        Policy = new ReceivePolicy(options, time),
        Acceptor = acceptor,
        Time = time,
        Certificate = ServerCertificate.LoadContext(options, _log.Write),
        Users = new SmtpUserStore(options.SmtpUsersPath),
        Log = _log.Write,
    };

    public async ValueTask DisposeAsync()
    {
        if (_listener is not null) await _listener.DisposeAsync().ConfigureAwait(false);
        foreach (var s in _schedulers) await s.DisposeAsync().ConfigureAwait(false);
        _throttle?.Dispose();
        await _stop.CancelAsync().ConfigureAwait(false);
        try { await Task.WhenAll(_todos).ConfigureAwait(false); } catch (OperationCanceledException) { }
        long syncs = 0, records = 0;
        foreach (var q in _queues)
        {
            var (s, r) = q.Store.CommitStats;
            syncs += s;
            records += r;
            await q.DisposeAsync().ConfigureAwait(false);
        }
        foreach (var a in _agents.Values) await a.DisposeAsync().ConfigureAwait(false);
        _log.Write($"spool: {records} records in {syncs} group commits; {Sluice.Core.IO.DurableFile.SyncCount} fsyncs in all");
        _stop.Dispose();
    }
}
