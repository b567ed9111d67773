// The queue database one node uses (Queue.Store "postgres"): its connections, the schema brought up
// to date at start, the group-commit writer its queues share, the node's presence (PostgresNode: its name,
// lease and heartbeat), and the ownership of queue numbers.
// A queue number is owned by one node at a time through a session advisory lock (as the file spool's
// flock): PostgreSQL lets go of it when the owner's connection ends, kill -9 included.
using Npgsql;
using Sluice.Core.Configuration;

namespace Sluice.Queue.Postgres;

public sealed class PostgresQueueDatabase : IQueueStoreFactory
{
    /// <summary>How often the connection holding the queue locks is checked, and taken again after the database was away.</summary>
    private static readonly TimeSpan LockCheckInterval = TimeSpan.FromSeconds(2);

    private readonly NpgsqlDataSource _db;
    private readonly NpgsqlDataSource _sessions;
    private readonly TimeProvider _time;
    private readonly Action<string> _log;
    private readonly SemaphoreSlim _locksGate = new(1, 1);
    private readonly SortedSet<int> _owned = [];
    private readonly CancellationTokenSource _stop = new();
    private NpgsqlConnection? _locks;
    private Task _lockKeeper = Task.CompletedTask;
    private PostgresNode? _node;

    private PostgresQueueDatabase(NpgsqlDataSource db, NpgsqlDataSource sessions, TimeProvider time, Action<string> log)
    {
        _db = db;
        _sessions = sessions;
        _time = time;
        _log = log;
        Commits = new PostgresGroupCommit(db);
    }

    internal NpgsqlDataSource Source => _db;
    internal PostgresGroupCommit Commits { get; }
    public string Description { get; private set; } = "";
    public (long Commits, long Records) CommitStats => Commits.Stats;

    /// <summary>This node's name (Queue.Node), under which it holds messages and its lease.</summary>
    internal string Node => _node!.Name;
    internal TimeSpan Lease => _node!.Lease;

    /// <summary>The node's heartbeat has not succeeded for a lease: its mail may be taken by others, so it must start no delivery.</summary>
    public bool LeaseLapsed => _node!.LeaseLapsed;

    /// <summary>The node's status as JSON (queued, active, delivered... and roles) for the cluster views; asked at each heartbeat.</summary>
    public Func<string?> Status { set => _node!.Status = value; }

    /// <summary>Connects, migrates the schema and checks it; an IOException says what is wrong (unreachable, schema too new).</summary>
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
        // Connections that hold session state (the node's lock) are never pooled: closing one must end its session, and the lock with it.
        var sessions = new NpgsqlDataSourceBuilder(connectionString);
        sessions.ConnectionStringBuilder.ApplicationName ??= "sluice";
        sessions.ConnectionStringBuilder.Pooling = false;
        var database = new PostgresQueueDatabase(db, sessions.Build(), time, log) { Description = $"PostgreSQL {where}" };
        try
        {
            var (from, to) = await PostgresSchema.MigrateAsync(db, ct).ConfigureAwait(false);
            log(from == to ? $"queue database: {where}, schema version {to}" : $"queue database: {where}, schema migrated from version {from} to {to}");
            database._node = await PostgresNode.StartAsync(database._sessions, node, lease, NodeRoles.Format(roles), where, time, log, ct).ConfigureAwait(false);
            log($"queue database: node {node} ({NodeRoles.Format(roles)}), lease {lease.TotalSeconds:0.###}s");
            database._locks = await db.OpenConnectionAsync(ct).ConfigureAwait(false);
            database._lockKeeper = Task.Run(database.KeepLocksAsync);
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

    /// <summary>The configured numbers, plus queues holding mail that no running node owns (a node that is gone): those drain here.</summary>
    public IReadOnlyCollection<int> Numbers(IEnumerable<int> configured)
    {
        var numbers = new SortedSet<int>(configured);
        foreach (var found in QueuesWithMailAsync().GetAwaiter().GetResult())
            if (!numbers.Contains(found) && TryOwnAsync(found).GetAwaiter().GetResult()) numbers.Add(found);
        return numbers;
    }

    public IQueueStore Open(int number)
    {
        if (!TryOwnAsync(number).GetAwaiter().GetResult())
            throw new IOException($"queue{number} is in use by another sluice node on {Description}: give each node its own Queue:Start and Queue:Count");
        try
        {
            return PostgresQueueStore.OpenAsync(number, this, _time, CancellationToken.None).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            throw new IOException($"queue{number}: cannot read its mail from {Description}: {e.Message}", e);
        }
    }

    /// <summary>A retired queue holds no rows; giving up its lock lets any node use the number again.</summary>
    public void Remove(int number) => ReleaseAsync(number).GetAwaiter().GetResult();

    private async Task ReleaseAsync(int number)
    {
        await _locksGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!_owned.Remove(number)) return;
            await using var command = new NpgsqlCommand($"SELECT pg_advisory_unlock({PostgresSchema.QueueLockClass}, $1)", _locks);
            command.Parameters.Add(new NpgsqlParameter { Value = number });
            await command.ExecuteScalarAsync().ConfigureAwait(false);
        }
        finally
        {
            _locksGate.Release();
        }
    }

    private async Task<List<int>> QueuesWithMailAsync()
    {
        await using var command = _db.CreateCommand("SELECT DISTINCT queue FROM sluice_message");
        await using var rows = await command.ExecuteReaderAsync().ConfigureAwait(false);
        var queues = new List<int>();
        while (await rows.ReadAsync().ConfigureAwait(false)) queues.Add(rows.GetInt32(0));
        return queues;
    }

    private async Task<bool> TryOwnAsync(int number)
    {
        await _locksGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_owned.Contains(number)) return true;
            if (!await TryLockAsync(_locks!, number).ConfigureAwait(false)) return false;
            _owned.Add(number);
            return true;
        }
        finally
        {
            _locksGate.Release();
        }
    }

    private static async Task<bool> TryLockAsync(NpgsqlConnection connection, int number)
    {
        await using var command = new NpgsqlCommand($"SELECT pg_try_advisory_lock({PostgresSchema.QueueLockClass}, $1)", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = number });
        return (bool)(await command.ExecuteScalarAsync().ConfigureAwait(false))!;
    }

    /// <summary>
    /// Watches the connection that holds the queue locks. When the database was restarted the locks went
    /// with the connection: take them again on a new one, and say loudly if another node took one meanwhile.
    /// </summary>
    private async Task KeepLocksAsync()
    {
        using var timer = new PeriodicTimer(LockCheckInterval, _time);
        while (await WaitAsync(timer).ConfigureAwait(false))
        {
            await _locksGate.WaitAsync().ConfigureAwait(false);
            try
            {
                await using (var ping = new NpgsqlCommand("SELECT 1", _locks)) await ping.ExecuteScalarAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException or TimeoutException)
            {
                await RelockAsync().ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            finally
            {
                _locksGate.Release();
            }
        }
    }

    private async Task<bool> WaitAsync(PeriodicTimer timer)
    {
        try { return await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { return false; }
    }

    private async Task RelockAsync()
    {
        try
        {
            var fresh = await _db.OpenConnectionAsync(_stop.Token).ConfigureAwait(false);
            foreach (var number in _owned)
                if (!await TryLockAsync(fresh, number).ConfigureAwait(false))
                    _log($"warning: queue{number}: another node took it while the queue database was away; both may deliver its mail until one stops");
            if (_locks is not null) await _locks.DisposeAsync().ConfigureAwait(false);
            _locks = fresh;
            _log($"queue database: back; queue locks taken again ({string.Join(", ", _owned.Select(n => $"queue{n}"))})");
        }
        catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or OperationCanceledException)
        {
            // Still away (or stopping): the next check tries again.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _lockKeeper.ConfigureAwait(false);
        await Commits.DisposeAsync().ConfigureAwait(false);
        if (_node is not null) await _node.DisposeAsync().ConfigureAwait(false);
        if (_locks is not null) await _locks.DisposeAsync().ConfigureAwait(false);
        await _db.DisposeAsync().ConfigureAwait(false);
        await _sessions.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
        _locksGate.Dispose();
    }
}
