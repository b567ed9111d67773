// The composition root of `sluice serve`: Receive → Balancer → Queue[k] → Todo[k] → Scheduler[k]
// → Deliver, wired in that order and stopped in that order; and what an operator may ask of it while
// it runs: re-read the configuration (SIGHUP), retry deferred mail now (SIGALRM).
using System.Net;
using Sluice.Core.Configuration;
using Sluice.Core.IO;
using Sluice.Core.Logging;
using Sluice.Core.Mailboxes;
using Sluice.Delivery;
using Sluice.Delivery.Maildir;
using Sluice.Delivery.Smtp;
using Sluice.Operate;
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
    private readonly MaildirAgent _maildir;
    private readonly DeliveryLog _log;
    /// <summary>The configuration as started: what restart-only keys are compared with at a reload.</summary>
    private readonly SluiceOptions _started;
    private readonly string? _configFile;
    private readonly SmtpRoutes _routes;
    private readonly RetryPolicy _retry;
    /// <summary>One reload or flush at a time, and none once stopping has begun.</summary>
    private readonly Lock _operate = new();
    private bool _stopping;
    private SmtpListener? _listener;
    private AdminApi? _admin;
    private readonly HashSet<string> _draining = [];
    private DestinationThrottle? _throttle;
    private readonly TimeProvider _time;

    private SluiceServer(SluiceOptions options, string? configFile, DeliveryLog log, TimeProvider time, SessionCaps caps)
    {
        _log = log;
        _time = time;
        _started = options;
        _configFile = configFile;
        _routes = new SmtpRoutes(options.Routes);
        _retry = new RetryPolicy(options.Retry);
        _maildir = new MaildirAgent(options.MailboxRoot, options.Hostname, new MailboxMap(options), time);
        _agents = new()
        {
            [ChannelOptions.MaildirTransport] = _maildir,
            [ChannelOptions.SmtpTransport] = new SmtpRelayAgent(_routes, new MxResolver(options.Dns), options.Hostname, options.Delivery, time, caps.Outbound,
                new OwnAddresses(options.Hostname, options.Smtp.Listen.Select(l => Endpoints.TryParseSmtpListen(l, out var ep, out _) ? ep : null).OfType<IPEndPoint>())),
        };
    }

    public IReadOnlyList<EndPoint> SmtpEndpoints => _listener?.LocalEndpoints ?? [];

    public int QueueCount => _schedulers.Count;

    /// <summary>The queues that take new mail (Queue.Start/Count); others found on disk only drain.</summary>
    public int ActiveQueueCount { get; private set; }

    public string QueueBase => _started.QueueBase;

    /// <param name="configFile">Where <paramref name="options"/> came from (null: embedded defaults); a reload reads it again.</param>
    /// <param name="caps">Sessions the open-files limit allows each way (none: no cap beyond the configuration).</param>
    public static SluiceServer Start(SluiceOptions options, string? configFile, DeliveryLog log, TimeProvider time, SessionCaps? caps = null)
    {
        caps ??= SessionCaps.None;
        var server = new SluiceServer(options, configFile, log, time, caps);
        try
        {
            server.StartStages(options, time, caps.Inbound);
            return server;
        }
        catch
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
    }

    private void StartStages(SluiceOptions options, TimeProvider time, int maxSessions)
    {
        var channels = new ChannelMap(options.Channels);
        var throttle = _throttle = new DestinationThrottle(time, _log.Write);
        var active = Enumerable.Range(options.Queue.Start, options.Queue.Count).ToHashSet();
        foreach (var number in QueueLayout.Numbers(options.QueueBase, active))
        {
            var store = FileQueueStore.Open(number, QueueLayout.PathOf(options.QueueBase, number), options.Queue.SegmentBytes.Bytes, time, _log.Write);
            var queue = new MailQueue(store);
            _queues.Add(queue);
            var scheduler = new QueueScheduler(queue, channels, _agents, throttle, _retry, _log, time, options.Hostname,
                $"postmaster@{options.Smtp.LocalDomains.FirstOrDefault() ?? options.Hostname}", options.Queue.ActiveMessages);
            _schedulers.Add(scheduler);
            _todos.Add(new Todo(queue, scheduler, _log).RunAsync(_stop.Token));
            _log.Write($"{queue.Name}: {store.MessageCount} messages, {store.RecipientCount} recipients recovered"
                + (active.Contains(number) ? "" : " (outside Queue.Start/Count: draining, takes no new mail)"));
            if (!active.Contains(number)) _draining.Add(queue.Name);
        }
        var balancer = new Balancer([.. _queues.Where(q => active.Contains(q.Number))]);
        _listener = new SmtpListener(ReceiveContext(options, balancer, time),
            new ConnectionLimits(Math.Min(options.Smtp.MaxConnections, maxSessions), options.Smtp.MaxConnectionsPerClient), _log);
        _listener.Start(options.Smtp.Listen.Select(l =>
            Endpoints.TryParseSmtpListen(l, out var ep, out var role) ? (ep, role) : throw new ConfigurationException($"Smtp:Listen: {l}")));
        ActiveQueueCount = active.Count;
        try
        {
            _admin = AdminApi.StartAsync(options, Status, Flush).GetAwaiter().GetResult();
            _log.Write($"admin: listening on {options.AdminSocket}" + (options.Http.Listen is { } http ? $" and http://{http}" : ""));
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ArgumentException or InvalidOperationException)
        {
            // Mail keeps flowing without the operator's API (a socket path too long, a port taken): say so once.
            _log.Write($"warning: admin API not started, so top and /metrics are unavailable: {e.Message}");
        }
    }

    /// <summary>Every queue and the busiest destinations now: what `sluice top` and /metrics show.</summary>
    public ServerStatus Status() =>
        new(_time.GetUtcNow(), [.. _schedulers.Select(s => s.Status())], [.. _draining], _throttle?.Busiest(10) ?? []);

    private SessionContext ReceiveContext(SluiceOptions options, IMessageAcceptor acceptor, TimeProvider time) => new()
    {
        Policy = new ReceivePolicy(options, time),
        Acceptor = acceptor,
        Time = time,
        Certificate = ServerCertificate.LoadContext(options, _log.Write),
        Users = new SmtpUserStore(options.SmtpUsersPath),
        Log = _log.Write,
    };

    /// <summary>
    /// Reads the configuration file and environment again, as at start. Valid: channels, routes and retry
    /// take effect at once (work in flight finishes as it is) and the other keys that changed are named
    /// for a restart. Invalid: nothing changes and the problems say why.
    /// </summary>
    public ConfigReload Reload()
    {
        lock (_operate)
        {
            if (_stopping) return ConfigReload.Refused(["the server is stopping"]);
            SluiceOptions next;
            try
            {
                next = ConfigLoader.Load(_configFile);
            }
            catch (ConfigurationException e)
            {
                return ConfigReload.Refused(e.Message.Split(Environment.NewLine));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return ConfigReload.Refused([$"{_configFile}: cannot be read: {e.Message}"]);
            }
            // Routes first: jobs handed out again by the new channels get their destination from the new routes.
            _routes.Replace(next.Routes);
            _retry.Replace(next.Retry);
            var channels = new ChannelMap(next.Channels);
            foreach (var s in _schedulers) s.Reload(channels);
            _maildir.Mailboxes = new MailboxMap(next);
            if (_listener is not null) _listener.Policy = ReloadedPolicy(next);
            return new ConfigReload([], [.. RestartOnlyKeys.Changed(_started, next)], next.Channels.Count, next.Routes.Count);
        }
    }

    /// <summary>The receiver's policy from a reloaded file; Hostname, the spool's and the Maildirs' places are restart-only, so they stay.</summary>
    private ReceivePolicy ReloadedPolicy(SluiceOptions next) => new(new SluiceOptions
    {
        Hostname = _started.Hostname,
        DataDir = _started.DataDir,
        Smtp = next.Smtp,
        Mailboxes = new MailboxesOptions
        {
            Root = _started.Mailboxes.Root, // where quotas are read stays where the agent delivers until a restart
            Users = next.Mailboxes.Users,
            Aliases = next.Mailboxes.Aliases,
            Domains = next.Mailboxes.Domains,
            ExtensionSeparators = next.Mailboxes.ExtensionSeparators,
            CreateExtensionFolders = next.Mailboxes.CreateExtensionFolders,
            RoleAccounts = next.Mailboxes.RoleAccounts,
        },
        Queue = new QueueOptions { Base = _started.Queue.Base, MinFreeBytes = next.Queue.MinFreeBytes },
    }, _time);

    /// <summary>Every queue's deferred recipients become due now and destination suspensions end (qmail-send's SIGALRM).</summary>
    public void Flush()
    {
        lock (_operate)
        {
            if (_stopping) return;
            foreach (var s in _schedulers) s.Flush();
        }
    }

    public async ValueTask DisposeAsync()
    {
        lock (_operate) _stopping = true;
        if (_admin is not null) await _admin.DisposeAsync().ConfigureAwait(false);
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
