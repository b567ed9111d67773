// One node's presence in the queue database: its name, held by a session advisory lock so that a second
// process with the same Queue.Node is refused; its sluice_node row; and a heartbeat every Lease/3 that sets
// alive_until = now() + Lease by the database's clock. Once the lease has passed another node may take its
// mail, so the node judges its own lease by its monotonic clock from the moment its last heartbeat was sent
// (never later than the database's alive_until) and starts no delivery once it has lapsed.
using Npgsql;

namespace Sluice.Queue.Postgres;

internal sealed class PostgresNode : IAsyncDisposable
{
    private readonly NpgsqlDataSource _db;
    private readonly TimeProvider _time;
    private readonly Action<string> _log;
    private readonly string _where;
    private readonly CancellationTokenSource _stop = new();
    /// <summary>Holds the name's lock; the heartbeat runs on it. Null while the database is away.</summary>
    private NpgsqlConnection? _connection;
    private long _lastBeat, _renewals;
    private bool _registered, _saidLapsed, _saidTaken;
    private Task _heartbeat = Task.CompletedTask;
    private Func<string?>? _status;

    private PostgresNode(NpgsqlDataSource db, string name, TimeSpan lease, string roles, string where, TimeProvider time, Action<string> log)
    {
        (_db, Name, Lease, Roles, _where, _time, _log) = (db, name, lease, roles, where, time, log);
    }

    public string Name { get; }
    public TimeSpan Lease { get; }
    public string Roles { get; }

    /// <summary>The node's status as JSON for its row (the cluster views read it), asked at each heartbeat; null writes none.</summary>
    public Func<string?> Status { set => Volatile.Write(ref _status, value); }

    /// <summary>How many times the lease was renewed after it had lapsed: each time, other nodes may have taken some of this node's mail.</summary>
    public long Renewals => Interlocked.Read(ref _renewals);

    /// <summary>True once Lease has passed since the last heartbeat that succeeded was sent: other nodes may be taking this node's mail.</summary>
    public bool LeaseLapsed => _time.GetElapsedTime(Volatile.Read(ref _lastBeat)) >= Lease;

    /// <summary>Takes the name (an IOException when another live process has it), registers the node and starts its heartbeat.</summary>
    public static async Task<PostgresNode> StartAsync(NpgsqlDataSource db, string name, TimeSpan lease, string roles, string where,
        TimeProvider time, Action<string> log, CancellationToken ct)
    {
        var node = new PostgresNode(db, name, lease, roles, where, time, log);
        try
        {
            node._connection = await db.OpenConnectionAsync(ct).ConfigureAwait(false);
            if (!await TryLockAsync(node._connection, name, ct).ConfigureAwait(false))
                throw new IOException($"node {name} is already running on {where}: give each node its own Queue:Node");
            var sent = time.GetTimestamp();
            await using (var register = new NpgsqlCommand("""
                INSERT INTO sluice_node (name, roles, started_at, alive_until) VALUES ($1, $2, now(), now() + $3)
                ON CONFLICT (name) DO UPDATE SET roles = excluded.roles, started_at = excluded.started_at, alive_until = excluded.alive_until, status = NULL
                """, node._connection))
            {
                register.Parameters.Add(new NpgsqlParameter { Value = name });
                register.Parameters.Add(new NpgsqlParameter { Value = roles });
                register.Parameters.Add(new NpgsqlParameter { Value = lease });
                await register.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            node._registered = true;
            node._lastBeat = sent;
            node._heartbeat = Task.Run(node.BeatAsync, CancellationToken.None);
            return node;
        }
        catch
        {
            await node.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<bool> TryLockAsync(NpgsqlConnection connection, string name, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand($"SELECT pg_try_advisory_lock({PostgresSchema.NodeLockClass}, hashtext($1))", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = name });
        return (bool)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    private async Task BeatAsync()
    {
        using var timer = new PeriodicTimer(Lease / 3, _time);
        while (await WaitAsync(timer).ConfigureAwait(false))
        {
            var sent = _time.GetTimestamp();
            try
            {
                // A beat that hangs (the database stalled) must not hold up the next: it counts as failed after a third of the lease.
                using var limit = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                limit.CancelAfter(Lease / 3);
                if (_connection is null && !await ReconnectAsync(limit.Token).ConfigureAwait(false)) continue;
                await BeatOnceAsync(_connection!, limit.Token).ConfigureAwait(false);
                // Lapsed until this beat (a failed heartbeat, or the process stood still): the others may have taken mail meanwhile.
                // Measured to the beat's return, not its sending: a beat held up in the database (a locked row) may renew a
                // lease that ran out, and was claimed from, while it waited.
                if (_time.GetElapsedTime(Volatile.Read(ref _lastBeat)) >= Lease) Interlocked.Increment(ref _renewals);
                Volatile.Write(ref _lastBeat, sent);
                if (_saidLapsed) _log($"queue database: node {Name}: lease renewed; deliveries start again");
                _saidLapsed = _saidTaken = false;
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException or TimeoutException or OperationCanceledException)
            {
                // The connection, and with it the name's lock, is gone (database restarted, network): a new one next beat.
                if (_connection is not null) await _connection.DisposeAsync().ConfigureAwait(false);
                _connection = null;
            }
            finally
            {
                if (LeaseLapsed && !_saidLapsed)
                {
                    _saidLapsed = true;
                    _log($"warning: queue database: node {Name}: lease lapsed (no heartbeat for {Lease.TotalSeconds:0.#}s): no new delivery starts until it is renewed");
                }
            }
        }
    }

    private async Task BeatOnceAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using var beat = new NpgsqlCommand("UPDATE sluice_node SET alive_until = now() + $2, status = $3::jsonb WHERE name = $1", connection);
        beat.Parameters.Add(new NpgsqlParameter { Value = Name });
        beat.Parameters.Add(new NpgsqlParameter { Value = Lease });
        beat.Parameters.Add(new NpgsqlParameter<string?> { TypedValue = Volatile.Read(ref _status)?.Invoke(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        await beat.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>The database is back: take the name again on a new connection. False (said once) when another process has taken it meanwhile.</summary>
    private async Task<bool> ReconnectAsync(CancellationToken ct)
    {
        var connection = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        var locked = false;
        try
        {
            locked = await TryLockAsync(connection, Name, ct).ConfigureAwait(false);
        }
        finally
        {
            if (!locked) await connection.DisposeAsync().ConfigureAwait(false);
        }
        if (locked)
        {
            _connection = connection;
            _log($"queue database: back; node {Name} holds its name again");
            return true;
        }
        if (!_saidTaken)
            _log($"warning: queue database: node {Name}: another process took this node's name while the database was away; this one starts no delivery while it runs");
        _saidTaken = true;
        return false;
    }

    private async Task<bool> WaitAsync(PeriodicTimer timer)
    {
        try { return await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { return false; }
    }

    /// <summary>A clean stop: the node's row says at once that it is gone, and the name's lock goes with the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _heartbeat.ConfigureAwait(false);
        if (_connection is not null)
        {
            if (_registered)
            {
                try
                {
                    await using var gone = new NpgsqlCommand("UPDATE sluice_node SET alive_until = now() WHERE name = $1", _connection);
                    gone.Parameters.Add(new NpgsqlParameter { Value = Name });
                    await gone.ExecuteNonQueryAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException or TimeoutException)
                {
                    // The database is away: the row's lease runs out on its own.
                }
            }
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
        _stop.Dispose();
    }
}
