// The composition root of `sluice serve`: Receive → Balancer → Queue[k] → Todo[k] → Scheduler[k]
// → Deliver, wired in that order and stopped in that order; and what an operator may ask of it while
// it runs: re-read the configuration (SIGHUP), retry deferred mail now (SIGALRM).
using System.Net;
using System.Net.Sockets;
using Sluice.Core.Configuration;
using Sluice.Core.IO;
using Sluice.Core.Logging;
using Sluice.Core.Mailboxes;
using Sluice.Delivery;
using Sluice.Delivery.Maildir;
using Sluice.Delivery.Smtp;
using Sluice.Delivery.Workers;
using Sluice.Operate;
using Sluice.Queue;
using Sluice.Receive;
using Sluice.Receive.Auth;
using Sluice.Receive.Tls;
using Sluice.Scheduling;

namespace Sluice;

internal sealed class SluiceServer : IServerControl, IAsyncDisposable
{
    private QueueSet? _queues;
    private IQueueStoreFactory? _stores;
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
    private DestinationThrottle? _throttle;
    private DeliveryNumbers? _numbers;
    /// <summary>The channels in force: a reload replaces them, and a queue the Scaler opens later starts with them.</summary>
    private ChannelMap? _channels;
    private readonly TimeProvider _time;

    private SluiceServer(SluiceOptions options, string? configFile, DeliveryLog log, TimeProvider time, SessionBudget sessions)
    {
        _log = log;
        _time = time;
        _started = options;
        _configFile = configFile;
        _routes = new SmtpRoutes(options.Routes);
        _retry = new RetryPolicy(options.Retry);
        _maildir = new MaildirAgent(options.MailboxRoot, options.Hostname, new MailboxMap(options, time), time, MaildirPermissions.From(options.Mailboxes));
        _agents = new()
        {
            [ChannelOptions.MaildirTransport] = _maildir,
            [ChannelOptions.SmtpTransport] = SmtpAgent(options, sessions),
        };
    }

    /// <summary>Remote delivery in this process, or in Delivery.Workers child processes (started here, ready on return).</summary>
    private IDeliveryAgent SmtpAgent(SluiceOptions options, SessionBudget sessions)
    {
        var settings = SmtpAgentSettings.From(options);
        // A receive-only node delivers nothing, so it needs no workers.
        if (options.Delivery.Workers == 0 || !NodeRoles.Parse(options.Queue.Roles).HasFlag(NodeRole.Deliver))
            return settings.CreateAgent(_routes, _time, sessions);
        Directory.CreateDirectory(options.DataDir);
        var socket = Path.GetFullPath(Path.Combine(options.DataDir, "delivery.sock"));
        return DeliveryWorkerPool.StartAsync(options.Delivery.Workers, settings, _routes, socket, () => Verbs.DeliveryWorkerVerb.StartInfo(socket),
            _log.Write, TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();
    }

    public IReadOnlyList<EndPoint> SmtpEndpoints => _listener?.LocalEndpoints ?? [];

    /// <summary>The listeners are bound in Smtp.Listen's order: the first of the smtp role takes injected mail.</summary>
    public IPEndPoint? InjectionEndpoint => SmtpEndpoints.Zip(_started.Smtp.Listen)
        .Where(l => Endpoints.TryParseSmtpListen(l.Second, out _, out var role) && role == SmtpRole.Smtp)
        .Select(l => l.First as IPEndPoint).FirstOrDefault();

    /// <summary>`serve --roles`, which a reload keeps over the file's Queue.Roles.</summary>
    internal string? CommandLineRoles { get; set; }

    /// <summary>When the node last reported to the cluster, and its totals then: its rates are taken between two reports.</summary>
    private (long At, long Accepted, long Delivered) _lastReport;

    public int QueueCount => Schedulers().Count;

    /// <summary>The queues that take new mail; others (found on disk beyond Queue.Count, retiring, disabled) only drain.</summary>
    public int ActiveQueueCount => _queues?.Balancer.Queues.Count ?? 0;

    /// <summary>Where the queues are: the spool directory, or the queue database.</summary>
    public string QueuePlace => _stores?.Description ?? _started.QueueBase;

    /// <param name="configFile">Where <paramref name="options"/> came from (null: embedded defaults); a reload reads it again.</param>
    /// <param name="sessions">The descriptors SMTP sessions share both ways (none: no cap beyond the configuration).</param>
    /// <param name="bound">The SMTP listeners, bound before privileges were dropped (null: bound here).</param>
    public static SluiceServer Start(SluiceOptions options, string? configFile, DeliveryLog log, TimeProvider time, SessionBudget? sessions = null,
        IReadOnlyList<(Socket Socket, SmtpRole Role)>? bound = null)
    {
        sessions ??= SessionBudget.Unlimited;
        var server = new SluiceServer(options, configFile, log, time, sessions);
        try
        {
            server.StartStages(options, time, sessions, bound);
            return server;
        }
        catch
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
    }

    /// <summary>Whether this node opens SMTP listeners: a deliver-only node takes no mail over SMTP.</summary>
    public static bool Receives(SluiceOptions options) => NodeRoles.Parse(options.Queue.Roles).HasFlag(NodeRole.Receive);

    /// <summary>Binds Smtp.Listen's endpoints, in its order, without accepting yet.</summary>
    public static IReadOnlyList<(Socket Socket, SmtpRole Role)> BindListeners(SluiceOptions options) =>
        SmtpListener.Bind(options.Smtp.Listen.Select(l =>
            Endpoints.TryParseSmtpListen(l, out var ep, out var role) ? (ep, role) : throw new ConfigurationException($"Smtp:Listen: {l}")));

    private void StartStages(SluiceOptions options, TimeProvider time, SessionBudget sessions, IReadOnlyList<(Socket Socket, SmtpRole Role)>? bound)
    {
        _channels = new ChannelMap(options.Channels);
        var q = options.Queue;
        var roles = NodeRoles.Parse(q.Roles);
        var stores = _stores = QueueStores.Open(options, time, _log.Write);
        // A slot stays with this node while the pool may hold its connection idle (closed within 1.5 × IdleTimeout).
        var throttle = _throttle = new DestinationThrottle(time, _log.Write, stores.DestinationLimits, 2 * options.Delivery.IdleTimeout);
        var numbers = _numbers = DeliveryNumbers.Continue(Path.GetFullPath(Path.Combine(options.DataDir, "delivery-numbers")), _log.Write);
        _queues = new QueueSet(new(q.Dynamic, q.Count, q.Max, q.Load, q.IdleRetire), q.Start, stores, queue =>
            new QueueScheduler(queue, Volatile.Read(ref _channels)!, _agents, throttle, _retry, _log, time, options.Hostname,
                $"postmaster@{options.Smtp.LocalDomains.FirstOrDefault() ?? options.Hostname}", q.ActiveMessages, () => _maildir.Mailboxes) { Numbers = numbers }, _log, time)
        {
            Interval = q.ScaleInterval,
            Delivers = roles.HasFlag(NodeRole.Deliver),
        };
        _queues.OpenAtStart();
        if (stores is Queue.Postgres.PostgresQueueDatabase database)
        {
            database.Status = NodeReportJson;
            // Another node reloaded (`sluice reload` there): this one re-reads its own file too, off the listener's thread.
            database.ConfigChanged += node => Task.Run(() =>
            {
                foreach (var line in Reload().Lines) _log.Write($"reload (node {node} reloaded): {line}");
            });
        }
        if (!roles.HasFlag(NodeRole.Deliver)) _log.Write("roles: receive only: mail is queued for the nodes that deliver, none is delivered here");
        if (!Receives(options))
        {
            // A deliver-only node opens no SMTP listener (and so takes no `sluice inject`): its mail comes from the receiving nodes.
            _log.Write("roles: deliver only: no SMTP listener; this node delivers the mail the receiving nodes queue");
        }
        else
        {
            _listener = new SmtpListener(ReceiveContext(options, _queues.Balancer, time),
                new ConnectionLimits(Math.Min(options.Smtp.MaxConnections, sessions.InboundMax), options.Smtp.MaxConnectionsPerClient), sessions, _log);
            _listener.Start(bound ?? BindListeners(options));
        }
        try
        {
            _admin = AdminApi.StartAsync(options, this).GetAwaiter().GetResult();
            _log.Write($"admin: listening on {options.AdminSocket}" + (options.Http.Listen is { } http ? $" and http://{http}" : ""));
            // Not a start refusal: the contract's configurations set Http.Listen alone, and SMTP should not stop for it.
            if (options.Http.Listen is not null && options.Http.Token is null && options.Http.ReadToken is null)
                _log.Write("warning: Http.Listen has no Http.Token or Http.ReadToken: every request over TCP but /healthz and /readyz is refused (401)");
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ArgumentException or InvalidOperationException)
        {
            // Mail keeps flowing without the operator's API (a socket path too long, a port taken): say so once.
            _log.Write($"warning: admin API not started, so top and /metrics are unavailable: {e.Message}");
        }
    }

    public async Task<bool> ReadyAsync(CancellationToken ct)
    {
        bool listening;
        lock (_operate) listening = !_stopping && (_listener is not null || !Receives(_started));
        return listening && _stores is { } stores && await stores.WritableAsync(ct).ConfigureAwait(false);
    }

    public IReadOnlyList<QueueScheduler> Schedulers()
    {
        lock (_operate) return _stopping ? [] : _queues?.Schedulers ?? [];
    }

    /// <summary>Every queue and the busiest destinations now: what `sluice top` and /metrics show.</summary>
    public ServerStatus Status() =>
        new(_time.GetUtcNow(), [.. Schedulers().Select(s => s.Status())], _queues?.Draining ?? [], _throttle?.Busiest(10) ?? [], _queues!.Settings)
        {
            Nodes = _stores?.Cluster ?? [],
        };

    /// <summary>The node's totals for its row in the queue database (the cluster views read them), and its rates since the last report.</summary>
    private string NodeReportJson()
    {
        var queues = Schedulers().Select(s => s.Status()).ToList();
        var (accepted, delivered) = (queues.Sum(q => q.Accepted), queues.Sum(q => q.Delivered));
        var now = _time.GetTimestamp();
        var (at, acceptedBefore, deliveredBefore) = _lastReport;
        _lastReport = (now, accepted, delivered);
        var seconds = at == 0 ? 0 : _time.GetElapsedTime(at, now).TotalSeconds;
        double PerSecond(long grown) => seconds > 0 ? Math.Round(Math.Max(0, grown) / seconds, 1) : 0;
        return new NodeReport(queues.Sum(q => q.Messages), queues.Sum(q => q.Recipients), queues.Sum(q => q.Active), accepted, delivered,
            queues.Sum(q => q.Deferred), queues.Sum(q => q.Failed), PerSecond(accepted - acceptedBefore), PerSecond(delivered - deliveredBefore)).ToJson();
    }

    public string? ChangeQueues(QueueChange c) => _queues!.Change(c.Dynamic, c.Count, c.Max, c.Load, c.IdleRetire);

    public string? DisableQueue(int number) => _queues!.Disable(number);

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
    /// A reload an operator asked of this node (SIGHUP, or `sluice reload` through the admin API): its
    /// outcome is logged after "<paramref name="by"/>: ", and once applied, on a shared queue database the
    /// other nodes are told, and reload too.
    /// </summary>
    public ConfigReload ReloadAskedBy(string by)
    {
        var reload = Reload();
        foreach (var line in reload.Lines) _log.Write($"{by}: {line}");
        if (reload.Applied && _stores is Queue.Postgres.PostgresQueueDatabase database) _ = database.AnnounceConfigChangeAsync();
        return reload;
    }

    public ConfigReload ReloadConfiguration() => ReloadAskedBy("reload");

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
            if (CommandLineRoles is { } roles) next.Queue.Roles = roles;
            // Routes first: jobs handed out again by the new channels get their destination from the new routes.
            _routes.Replace(next.Routes);
            _retry.Replace(next.Retry);
            var channels = new ChannelMap(next.Channels);
            Volatile.Write(ref _channels, channels);
            foreach (var s in Schedulers()) s.Reload(channels);
            _maildir.Mailboxes = new MailboxMap(next, _time);
            if (_queues is not null)
            {
                _queues.Interval = next.Queue.ScaleInterval;
                _queues.Change(next.Queue.Dynamic, next.Queue.Count, next.Queue.Max, next.Queue.Load, next.Queue.IdleRetire);
            }
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
            Srs = next.Mailboxes.Srs,
        },
        Queue = new QueueOptions { Base = _started.Queue.Base, MinFreeBytes = next.Queue.MinFreeBytes },
    }, _time, _listener?.Policy.LoginRates);

    /// <summary>Every queue's deferred recipients become due now and destination suspensions end (qmail-send's SIGALRM).</summary>
    public void Flush()
    {
        lock (_operate)
        {
            if (_stopping) return;
            foreach (var s in Schedulers()) s.Flush();
        }
    }

    public async ValueTask DisposeAsync()
    {
        lock (_operate) _stopping = true;
        if (_admin is not null) await _admin.DisposeAsync().ConfigureAwait(false);
        if (_listener is not null) await _listener.DisposeAsync().ConfigureAwait(false);
        if (_queues is not null) await _queues.DisposeAsync().ConfigureAwait(false);
        _numbers?.Save();
        _throttle?.Dispose();
        if (_stores is not null)
        {
            await _stores.DisposeAsync().ConfigureAwait(false);
            var (commits, records) = _stores.CommitStats;
            _log.Write($"spool: {records} records in {commits} group commits; {Sluice.Core.IO.DurableFile.SyncCount} fsyncs in all");
        }
        foreach (var a in _agents.Values) await a.DisposeAsync().ConfigureAwait(false);
    }
}
