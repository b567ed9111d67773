// The queue database one node uses (Queue.Store "postgres"): its connections, the schema brought up to
// date at start, the group-commit writer its queues share, and the node's presence (PostgresNode: name,
// lease, heartbeat). Mail belongs to a node and one of its queues. A node that delivers keeps the mail it
// accepts, and takes over by claims the mail no live node holds: a receive-only node's, a stopped node's,
// a dead node's once its lease has run out. Claims are woken by LISTEN/NOTIFY, and by a poll every Lease
// for a lost notification or a node that died without a word.
using System.Threading.Channels;
using Npgsql;
using Sluice.Core.Configuration;

namespace Sluice.Queue.Postgres;

public sealed class PostgresQueueDatabase : IQueueStoreFactory
{
    /// <summary>Notified, on commit, by an insert no node holds and by a node releasing its mail as it stops.</summary>
    internal const string NewMailChannel = "sluice_new";
    /// <summary>A node reloaded its configuration (`sluice reload`, SIGHUP); the payload is its name, and the others reload theirs.</summary>
    private const string ConfigChannel = "sluice_config";
    /// <summary>Messages one claim takes into one queue: small, so that nodes claiming at once share the work.</summary>
    private const int ClaimBatch = 100;
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    private readonly NpgsqlDataSource _db;
    private readonly NpgsqlDataSource _sessions;
    private readonly TimeProvider _time;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<int, PostgresQueueStore> _stores = [];
    private readonly Channel<bool> _claimWanted = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly SemaphoreSlim _reconcileGate = new(1, 1);
    private PostgresNode? _node;
    private Task[] _loops = [];
    /// <summary>The node's lease renewals after a lapse whose consequences (mail claimed by others) this node has caught up with.</summary>
    private long _reconciled;

    private PostgresQueueDatabase(NpgsqlDataSource db, NpgsqlDataSource sessions, NodeRole roles, TimeProvider time, Action<string> log)
    {
        _db = db;
        _sessions = sessions;
        Roles = roles;
        _time = time;
        _log = log;
        Commits = new PostgresGroupCommit(db);
        _limits = new PostgresDestinationLimits(db, log);
        _cluster = new PostgresClusterView(db, time);
    }

    internal NpgsqlDataSource Source => _db;
    internal PostgresGroupCommit Commits { get; }
    private readonly PostgresDestinationLimits _limits;
    public IClusterDestinationLimits? DestinationLimits => _limits;
    private readonly PostgresClusterView _cluster;
    public IReadOnlyList<ClusterNode> Cluster => _cluster.Nodes;
    public string Description { get; private set; } = "";
    public (long Commits, long Records) CommitStats => Commits.Stats;
    public NodeRole Roles { get; }
    /// <summary>The node delivers: it keeps the mail it accepts and claims mail no live node holds.</summary>
    internal bool Delivers => Roles.HasFlag(NodeRole.Deliver);

    /// <summary>This node's name (Queue.Node), under which it holds messages and its lease.</summary>
    internal string Node => _node!.Name;
    internal TimeSpan Lease => _node!.Lease;

    /// <summary>The node's heartbeat has not succeeded for a lease: its mail may be taken by others, so it must start no delivery.</summary>
    public bool LeaseLapsed => _node!.LeaseLapsed;

    /// <summary>The node's status as JSON (queued, active, delivered... and roles) for the cluster views; asked at each heartbeat.</summary>
    public Func<string?> Status { set => _node!.Status = value; }

    internal void Log(string line) => _log(line);

    /// <summary>Connects, migrates the schema, checks it and starts the node; an IOException says what is wrong (unreachable, schema too new, name taken).</summary>
    /// <param name="node">Queue.Node: refused while another live process runs under the same name.</param>
    /// <param name="lease">Queue.Lease: how long a heartbeat keeps the node alive for the others.</param>
    public static async Task<PostgresQueueDatabase> OpenAsync(string connectionString, string node, TimeSpan lease, NodeRole roles,
        TimeProvider time, Action<string> log, CancellationToken ct)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        builder.ConnectionStringBuilder.ApplicationName ??= "sluice";
        // 250 means committed and flushed: a server or role configured with synchronous_commit off is overruled for our sessions.
        builder.UsePhysicalConnectionInitializer(
            c => EnsureSynchronousCommit(c).GetAwaiter().GetResult(),
            EnsureSynchronousCommit);
        var where = $"{builder.ConnectionStringBuilder.Host}:{builder.ConnectionStringBuilder.Port}/{builder.ConnectionStringBuilder.Database}";
        var db = builder.Build();
        // Connections that hold session state (the node's lock, LISTEN) are never pooled: closing one must end its session.
        var sessions = new NpgsqlDataSourceBuilder(connectionString);
        sessions.ConnectionStringBuilder.ApplicationName ??= "sluice";
        sessions.ConnectionStringBuilder.Pooling = false;
        var database = new PostgresQueueDatabase(db, sessions.Build(), roles, time, log) { Description = $"PostgreSQL {where}" };
        try
        {
            var (from, to) = await PostgresSchema.MigrateAsync(db, ct).ConfigureAwait(false);
            log(from == to ? $"queue database: {where}, schema version {to}" : $"queue database: {where}, schema migrated from version {from} to {to}");
            database._node = await PostgresNode.StartAsync(database._sessions, node, lease, NodeRoles.Format(roles), where, time, log, ct).ConfigureAwait(false);
            log($"queue database: node {node} ({NodeRoles.Format(roles)}), lease {lease.TotalSeconds:0.###}s");
            if (database.Delivers) database._loops = [Task.Run(database.ListenAsync), Task.Run(database.ClaimLoopAsync), Task.Run(database.PollAsync)];
            else
            {
                database._loops = [Task.Run(database.ListenAsync)];
                // Restarted receive-only under a name that delivered before (and was killed): nobody would claim that mail while this node lives.
                await database.ReleaseAsync().ConfigureAwait(false);
            }
            return database;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            await database.DisposeAsync().ConfigureAwait(false);
            throw new IOException($"cannot use the queue database {where} (Queue:ConnectionString): {e.Message}", e);
        }
        catch
        {
            await database.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task EnsureSynchronousCommit(NpgsqlConnection connection)
    {
        await using var set = new NpgsqlCommand(
            "SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') = 'off'", connection);
        await set.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    /// <summary>Queue numbers are this node's own: the configured ones, plus any in which the node still holds mail (from a larger count).</summary>
    public IReadOnlyCollection<int> Numbers(IEnumerable<int> configured)
    {
        var numbers = new SortedSet<int>(configured);
        if (Delivers) numbers.UnionWith(QueuesWithOwnMailAsync().GetAwaiter().GetResult());
        return numbers;
    }

    private async Task<List<int>> QueuesWithOwnMailAsync()
    {
        await using var command = _db.CreateCommand("SELECT DISTINCT queue FROM sluice_message WHERE node = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = Node });
        await using var rows = await command.ExecuteReaderAsync().ConfigureAwait(false);
        var queues = new List<int>();
        while (await rows.ReadAsync().ConfigureAwait(false)) queues.Add(rows.GetInt32(0));
        return queues;
    }

    public IQueueStore Open(int number)
    {
        PostgresQueueStore store;
        try
        {
            store = PostgresQueueStore.OpenAsync(number, this, _time, CancellationToken.None).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            throw new IOException($"queue{number}: cannot read its mail from {Description}: {e.Message}", e);
        }
        lock (_stores) _stores[number] = store;
        WantClaim();
        return store;
    }

    /// <summary>An emptied queue holds no rows: nothing is left to take away.</summary>
    public void Remove(int number) { }

    /// <summary>A queue closed by the server takes no more claims.</summary>
    internal void Closed(PostgresQueueStore store)
    {
        lock (_stores)
            if (_stores.GetValueOrDefault(store.Number) == store) _stores.Remove(store.Number);
    }

    private void WantClaim() => _claimWanted.Writer.TryWrite(true);

    /// <summary>Message ids taken ahead from the identity sequence, a block per round trip; one left unused at a stop is a gap, never reused.</summary>
    private readonly System.Collections.Concurrent.ConcurrentQueue<long> _messageIds = new();
    private const int MessageIdBlock = 64;

    /// <summary>An id for a message whose bytes name it before its row is written (its Received header).</summary>
    public async ValueTask<long> NextMessageIdAsync(CancellationToken ct)
    {
        if (_messageIds.TryDequeue(out var id)) return id;
        try
        {
            await using var take = _db.CreateCommand(
                $"SELECT nextval(pg_get_serial_sequence('sluice_message', 'id')) FROM generate_series(1, {MessageIdBlock})");
            await using var rows = await take.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await rows.ReadAsync(ct).ConfigureAwait(false);
            id = rows.GetInt64(0);
            while (await rows.ReadAsync(ct).ConfigureAwait(false)) _messageIds.Enqueue(rows.GetInt64(0));
            return id;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // As a failed commit is (PostgresGroupCommit): the session answers 451, not an unhandled error.
            throw new IOException($"queue database: {e.Message}", e);
        }
    }

    /// <summary>The database answers a query within five seconds.</summary>
    public async Task<bool> WritableAsync(CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct, _stop.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            await using var ping = _db.CreateCommand("SELECT 1");
            return await ping.ExecuteScalarAsync(timeout.Token).ConfigureAwait(false) is 1;
        }
        catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Raised (on the listening connection's thread) when another node has reloaded its configuration: its name.</summary>
    public event Action<string>? ConfigChanged;

    /// <summary>Tells the other nodes this one has reloaded its configuration, so they reload theirs (one `sluice reload` for the cluster).</summary>
    public async Task AnnounceConfigChangeAsync()
    {
        try
        {
            await using var notify = _db.CreateCommand($"SELECT pg_notify('{ConfigChannel}', $1)");
            notify.Parameters.Add(new NpgsqlParameter { Value = Node });
            await notify.ExecuteNonQueryAsync(_stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or OperationCanceledException)
        {
            _log($"warning: queue database: could not tell the other nodes of this reload ({e.Message}); reload them on their own");
        }
    }

    /// <summary>
    /// LISTEN for configuration changes, and on a deliver node for new mail that no node holds: a claim follows
    /// each such notification and each reconnection (one may have been missed).
    /// </summary>
    private async Task ListenAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _sessions.OpenConnectionAsync(_stop.Token).ConfigureAwait(false);
                connection.Notification += (_, e) =>
                {
                    if (e.Channel == NewMailChannel) WantClaim();
                    else if (e.Channel == ConfigChannel && e.Payload != Node) ConfigChanged?.Invoke(e.Payload);
                };
                await using (var listen = new NpgsqlCommand(Delivers ? $"LISTEN {NewMailChannel}; LISTEN {ConfigChannel}" : $"LISTEN {ConfigChannel}", connection))
                    await listen.ExecuteNonQueryAsync(_stop.Token).ConfigureAwait(false);
                if (Delivers) WantClaim();
                while (true) await connection.WaitAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
            {
                if (!await DelayAsync(RetryDelay).ConfigureAwait(false)) return;
            }
        }
    }

    /// <summary>The fallback: a claim every Lease finds a dead node's mail once its lease has run out, and mail whose notification was lost.</summary>
    private async Task PollAsync()
    {
        while (await DelayAsync(Lease).ConfigureAwait(false)) WantClaim();
    }

    private async Task ClaimLoopAsync()
    {
        var wanted = _claimWanted.Reader;
        while (await WaitAsync(wanted).ConfigureAwait(false))
        {
            wanted.TryRead(out _);
            try
            {
                while (await ClaimRoundAsync().ConfigureAwait(false)) { }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
            {
                // The database is away: the next notification or poll claims again.
            }
        }
    }

    /// <summary>One claim per open queue; true when one came back full (more may be waiting). None while the lease has lapsed.</summary>
    internal async Task<bool> ClaimRoundAsync()
    {
        if (LeaseLapsed) return false;
        PostgresQueueStore[] stores;
        lock (_stores) stores = [.. _stores.Values];
        var full = false;
        foreach (var store in stores) full |= await store.ClaimAsync(ClaimBatch, _stop.Token).ConfigureAwait(false) == ClaimBatch;
        return full;
    }

    /// <summary>True when the node's lease lapsed and was renewed since this node last checked which of its mail others took meanwhile.</summary>
    internal bool ReconcileDue => _node!.Renewals != Volatile.Read(ref _reconciled);

    /// <summary>
    /// Waits while the lease has lapsed; once it is renewed, drops from every queue the messages other nodes claimed meanwhile
    /// (once per renewal, for every waiting delivery).
    /// </summary>
    internal async Task UntilLeaseHeldAsync(CancellationToken ct)
    {
        while (LeaseLapsed) await Task.Delay(Lease / 10, _time, ct).ConfigureAwait(false);
        var renewals = _node!.Renewals;
        if (renewals == Volatile.Read(ref _reconciled)) return;
        await _reconcileGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (renewals == _reconciled) return;
            await Commits.UntilReachableAsync(() => DropTakenAsync(ct), ct).ConfigureAwait(false);
            Volatile.Write(ref _reconciled, renewals);
        }
        finally
        {
            _reconcileGate.Release();
        }
    }

    private async Task<bool> DropTakenAsync(CancellationToken ct)
    {
        PostgresQueueStore[] stores;
        lock (_stores) stores = [.. _stores.Values];
        foreach (var store in stores)
        {
            // Live here means committed as this node's before: a row no longer this node's was claimed by another.
            await using var read = _db.CreateCommand(
                "SELECT id FROM unnest($2::bigint[]) AS live(id) WHERE NOT EXISTS (SELECT 1 FROM sluice_message m WHERE m.id = live.id AND m.node = $1)");
            read.Parameters.Add(new NpgsqlParameter { Value = Node });
            read.Parameters.Add(new NpgsqlParameter { Value = store.LiveIds().Select(id => (long)id).ToArray() });
            await using var rows = await read.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await rows.ReadAsync(ct).ConfigureAwait(false))
                if (store.Find((ulong)rows.GetInt64(0)) is { } taken)
                    store.Drop(taken, "another node claimed it while this node's lease had lapsed");
        }
        return true;
    }

    private async Task<bool> DelayAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _time, _stop.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private async Task<bool> WaitAsync(ChannelReader<bool> reader)
    {
        try { return await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { return false; }
    }

    /// <summary>
    /// A clean stop: once the queues' last writes are committed, the node gives its mail back (node NULL) and says so,
    /// so that the nodes still running take it over at once rather than after the lease. A receive-only node does it at start.
    /// </summary>
    private async Task ReleaseAsync()
    {
        try
        {
            await using var connection = await _db.OpenConnectionAsync().ConfigureAwait(false);
            await using var release = new NpgsqlBatch(connection)
            {
                BatchCommands =
                {
                    new NpgsqlBatchCommand("UPDATE sluice_message SET node = NULL WHERE node = $1") { Parameters = { new() { Value = Node } } },
                    new NpgsqlBatchCommand($"SELECT pg_notify('{NewMailChannel}', '')"),
                },
            };
            await release.ExecuteNonQueryAsync().ConfigureAwait(false);
            var released = release.BatchCommands[0].RecordsAffected;
            if (released > 0 || Delivers) _log($"queue database: node {Node}: {released} message{(released == 1 ? "" : "s")} released to the other nodes");
        }
        catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
        {
            _log($"warning: queue database: node {Node}: cannot release its mail ({e.Message}); the other nodes take it when its lease runs out");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_loops).ConfigureAwait(false);
        await Commits.DisposeAsync().ConfigureAwait(false);
        if (_node is not null)
        {
            if (Delivers && !_node.LeaseLapsed) await ReleaseAsync().ConfigureAwait(false);
            await _node.DisposeAsync().ConfigureAwait(false);
        }
        await _limits.DisposeAsync().ConfigureAwait(false);
        await _db.DisposeAsync().ConfigureAwait(false);
        await _sessions.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
        _reconcileGate.Dispose();
    }
}
