// Cluster-wide destination limits in the queue database. A connection slot is a session advisory
// lock (key: the destination's hash, slot index below the limit) held on one connection of this
// node, so a node's slots go when it does, kill -9 included, with no row to clean up. The pace is
// one row per destination holding its GCRA time, on the database's clock so nodes agree on it.
using Npgsql;

namespace Sluice.Queue.Postgres;

internal sealed class PostgresDestinationLimits(NpgsqlDataSource db, Action<string> log) : IClusterDestinationLimits, IAsyncDisposable
{
    // The first free index below the limit, skipping the ones this session holds (advisory locks are re-entrant
    // within a session). LIMIT stops the scan at the first lock taken, so a call takes at most one.
    private const string TakeSlot = """
        SELECT s FROM generate_series(0, $2 - 1) s
        WHERE CASE WHEN s = ANY($3) THEN false ELSE pg_try_advisory_lock(hashtext($1), s) END LIMIT 1
        """;

    private readonly SemaphoreSlim _gate = new(1, 1);
    /// <summary>Slot indexes held by this node, per destination (lower case).</summary>
    private readonly Dictionary<string, List<int>> _held = new(StringComparer.Ordinal);
    private NpgsqlConnection? _connection;

    public async Task<bool> TryTakeSlotAsync(string destination, int limit, CancellationToken ct)
    {
        var key = destination.ToLowerInvariant();
        return await UseAsync(async connection =>
        {
            var held = _held.TryGetValue(key, out var list) ? list : _held[key] = [];
            if (held.Count >= limit) return false;
            await using var take = new NpgsqlCommand(TakeSlot, connection);
            take.Parameters.Add(new NpgsqlParameter { Value = key });
            take.Parameters.Add(new NpgsqlParameter { Value = limit });
            take.Parameters.Add(new NpgsqlParameter { Value = held.ToArray() });
            if (await take.ExecuteScalarAsync(ct).ConfigureAwait(false) is not int slot) return false;
            held.Add(slot);
            return true;
        }, ct).ConfigureAwait(false);
    }

    public async Task GiveBackSlotAsync(string destination, CancellationToken ct)
    {
        var key = destination.ToLowerInvariant();
        await UseAsync(async connection =>
        {
            if (!_held.TryGetValue(key, out var held) || held.Count == 0) return false; // lost with a connection the database dropped
            var slot = held[^1];
            held.RemoveAt(held.Count - 1);
            if (held.Count == 0) _held.Remove(key);
            await using var free = new NpgsqlCommand("SELECT pg_advisory_unlock(hashtext($1), $2)", connection);
            free.Parameters.Add(new NpgsqlParameter { Value = key });
            free.Parameters.Add(new NpgsqlParameter { Value = slot });
            await free.ExecuteScalarAsync(ct).ConfigureAwait(false);
            return true;
        }, ct).ConfigureAwait(false);
    }

    public async Task<TimeSpan> TryTakeTurnAsync(string destination, TimeSpan interval, int burst, CancellationToken ct)
    {
        var key = destination.ToLowerInvariant();
        return await UseAsync(async connection =>
        {
            // One implicit transaction: the row exists, a turn is taken if one is due, and the wait until the next is read.
            await using var batch = new NpgsqlBatch(connection)
            {
                BatchCommands =
                {
                    Command("INSERT INTO sluice_destination_pace (destination, full_at) VALUES ($1, now()) ON CONFLICT DO NOTHING", key),
                    Command("""
                        UPDATE sluice_destination_pace SET full_at = greatest(full_at, now()) + $2
                        WHERE destination = $1 AND greatest(full_at, now()) - $2 * $3 <= now()
                        """, key, interval, burst - 1),
                    Command("SELECT greatest(full_at, now()) - $2 * $3 - now() FROM sluice_destination_pace WHERE destination = $1", key, interval, burst - 1),
                },
            };
            await using var rows = await batch.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await rows.ReadAsync(ct).ConfigureAwait(false);
            return batch.BatchCommands[1].RecordsAffected > 0 ? TimeSpan.Zero : rows.GetFieldValue<TimeSpan>(0);
        }, ct).ConfigureAwait(false);
    }

    private static NpgsqlBatchCommand Command(string sql, params object[] args)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var a in args) command.Parameters.Add(new NpgsqlParameter { Value = a });
        return command;
    }

    /// <summary>
    /// Runs on the one connection that holds this node's slots. If it broke (the database restarted) its
    /// locks went with it: the slots are forgotten, and a new connection is opened for the next call.
    /// Failures are IOExceptions, so the Scheduling stage needs no database types.
    /// </summary>
    private async Task<T> UseAsync<T>(Func<NpgsqlConnection, Task<T>> work, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_connection is null)
            {
                _connection = await db.OpenConnectionAsync(ct).ConfigureAwait(false);
                // Pace rows are not mail: losing the last turns in a database crash costs a few early turns, never a message.
                await using var relax = new NpgsqlCommand("SET synchronous_commit = off", _connection);
                await relax.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            return await work(_connection).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException)
        {
            if (_connection is { State: not System.Data.ConnectionState.Open })
            {
                var lost = _held.Values.Sum(h => h.Count);
                _held.Clear();
                await _connection.DisposeAsync().ConfigureAwait(false);
                _connection = null;
                log($"queue database: the connection holding destination slots broke; {lost} slots forgotten, taken again as needed");
            }
            throw new IOException($"queue database: {e.Message}", e);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// A clean stop gives the slots back before it closes: PostgreSQL frees a closed session's locks only once its
    /// backend has exited, a moment later, and another node asking in between would be refused.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            try
            {
                await using var free = new NpgsqlCommand("SELECT pg_advisory_unlock_all()", _connection);
                await free.ExecuteNonQueryAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
            {
                // The connection is gone already, and its locks with it.
            }
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
        _gate.Dispose();
    }
}
