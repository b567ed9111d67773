// Group commit for the PostgreSQL queue: one writer takes every write waiting and sends them as one
// batch, which PostgreSQL runs as one implicit transaction and commits with one WAL flush
// (synchronous_commit on). So throughput is not one round trip and one flush per message.
// A write's task completes only after the commit has been confirmed (ReadyForQuery read).
using System.Threading.Channels;
using Npgsql;

namespace Sluice.Queue.Postgres;

internal sealed class PostgresGroupCommit : IAsyncDisposable
{
    /// <summary>Most writes and bytes one transaction carries: bounds the latency a big batch adds to the writes behind it.</summary>
    private const int MaxBatchWrites = 1000;
    private const long MaxBatchBytes = 8 << 20;
    /// <summary>How long a write that must not be lost (a delivery outcome) waits before it is tried again while the database is away.</summary>
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    private readonly NpgsqlDataSource _db;
    private readonly Channel<PendingWrite> _pending = Channel.CreateUnbounded<PendingWrite>(new() { SingleReader = true });
    private readonly CancellationTokenSource _closing = new();
    private readonly Task _writer;
    private long _commits, _records;

    public PostgresGroupCommit(NpgsqlDataSource db)
    {
        _db = db;
        _writer = Task.Run(WriteLoopAsync);
    }

    public (long Commits, long Records) Stats => (Interlocked.Read(ref _commits), Interlocked.Read(ref _records));

    /// <summary>
    /// Commits <paramref name="sql"/> with its positional arguments ($1...) in the next group transaction.
    /// </summary>
    /// <param name="returnsId">The statement returns one row whose first column is a bigint (INSERT ... RETURNING id): the result.</param>
    /// <param name="keepTrying">
    /// When the database is away, try again until it is back (delivery outcomes: idempotent, and losing one
    /// means a repeated delivery); otherwise fail at once with an IOException (a message being received: the client retries).
    /// </param>
    public Task<long?> WriteAsync(string sql, object?[] args, bool keepTrying, bool returnsId = false, long bytes = 0)
    {
        var write = new PendingWrite(sql, args, keepTrying, returnsId, bytes);
        if (!_pending.Writer.TryWrite(write)) throw new ObjectDisposedException("queue database", "the queue database is closed");
        return write.Done.Task;
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<PendingWrite>();
        var reader = _pending.Reader;
        while (batch.Count > 0 || await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            long bytes = batch.Sum(w => w.Bytes);
            while (batch.Count < MaxBatchWrites && bytes < MaxBatchBytes && reader.TryRead(out var write))
            {
                batch.Add(write);
                bytes += write.Bytes;
            }
            try
            {
                var results = await CommitAsync(batch).ConfigureAwait(false);
                Interlocked.Increment(ref _commits);
                Interlocked.Add(ref _records, batch.Count);
                for (int i = 0; i < batch.Count; i++) batch[i].Done.TrySetResult(results[i]);
                batch.Clear();
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
            {
                var failure = new IOException($"queue database: {e.Message}", e);
                var retry = Transient(e) && !_closing.IsCancellationRequested;
                foreach (var w in batch)
                    if (!(retry && w.KeepTrying)) w.Done.TrySetException(failure);
                batch.RemoveAll(w => w.Done.Task.IsCompleted);
                if (batch.Count > 0)
                {
                    try { await Task.Delay(RetryDelay, _closing.Token).ConfigureAwait(false); }
                    catch (OperationCanceledException) { } // closing: one last try, then the writes fail
                }
            }
        }
    }

    /// <summary>One round trip: every write as one statement of a batch, committed together at its end.</summary>
    private async Task<long?[]> CommitAsync(List<PendingWrite> batch)
    {
        await using var connection = await _db.OpenConnectionAsync().ConfigureAwait(false);
        await using var command = new NpgsqlBatch(connection);
        foreach (var w in batch)
        {
            var statement = new NpgsqlBatchCommand(w.Sql);
            foreach (var a in w.Args) statement.Parameters.Add(new NpgsqlParameter { Value = a ?? DBNull.Value });
            command.BatchCommands.Add(statement);
        }
        var results = new long?[batch.Count];
        await using (var rows = await command.ExecuteReaderAsync().ConfigureAwait(false))
        {
            // Npgsql moves from one row-returning statement to the next; the others (UPDATE, DELETE) are passed over.
            var returning = Enumerable.Range(0, batch.Count).Where(i => batch[i].ReturnsId).GetEnumerator();
            do
            {
                if (!returning.MoveNext()) break;
                if (await rows.ReadAsync().ConfigureAwait(false)) results[returning.Current] = rows.GetInt64(0);
            } while (await rows.NextResultAsync().ConfigureAwait(false));
        }
        // The reader is closed only after ReadyForQuery, which follows the implicit transaction's commit.
        return results;
    }

    /// <summary>
    /// Runs a read, trying again while the database is away (restart, failover) until it is back or
    /// <paramref name="ct"/> ends: a queue waits for its database rather than setting work aside until a restart.
    /// Other database errors come out as IOException.
    /// </summary>
    public async Task<T> UntilReachableAsync<T>(Func<Task<T>> read, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                return await read().ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException && !ct.IsCancellationRequested)
            {
                if (!Transient(e)) throw new IOException($"queue database: {e.Message}", e);
            }
            await Task.Delay(RetryDelay, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The database or the way to it is away (restart, failover, network), not a fault in the statement.</summary>
    private static bool Transient(Exception e) => e switch
    {
        PostgresException p => p.IsTransient || p.SqlState.StartsWith("57", StringComparison.Ordinal) || p.SqlState.StartsWith("08", StringComparison.Ordinal),
        NpgsqlException or IOException or TimeoutException => true,
        _ => false,
    };

    public async ValueTask DisposeAsync()
    {
        _pending.Writer.TryComplete();
        await _closing.CancelAsync().ConfigureAwait(false);
        await _writer.ConfigureAwait(false);
        _closing.Dispose();
    }

    private sealed class PendingWrite(string sql, object?[] args, bool keepTrying, bool returnsId, long bytes)
    {
        public bool ReturnsId { get; } = returnsId;
        public string Sql { get; } = sql;
        public object?[] Args { get; } = args;
        public bool KeepTrying { get; } = keepTrying;
        public long Bytes { get; } = bytes + 64;
        public TaskCompletionSource<long?> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
