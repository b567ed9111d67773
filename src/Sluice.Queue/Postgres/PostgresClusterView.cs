// The cluster as the operator's views read it: every sluice_node row with its report. Read at most
// once a second however often it is asked (top and /metrics ask on every refresh), and never on the
// caller's path: an answer is the last snapshot, and an old one starts the next read.
using Npgsql;

namespace Sluice.Queue.Postgres;

internal sealed class PostgresClusterView(NpgsqlDataSource db, TimeProvider time)
{
    private static readonly TimeSpan Freshness = TimeSpan.FromSeconds(1);

    private IReadOnlyList<ClusterNode> _nodes = [];
    private long _readAt = long.MinValue;
    private int _reading;

    public IReadOnlyList<ClusterNode> Nodes
    {
        get
        {
            var readAt = Interlocked.Read(ref _readAt);
            if ((readAt == long.MinValue || time.GetElapsedTime(readAt) > Freshness) && Interlocked.Exchange(ref _reading, 1) == 0)
                _ = Task.Run(ReadAsync);
            return Volatile.Read(ref _nodes);
        }
    }

    /// <summary>Reads the rows now (the first answer at start, and tests).</summary>
    public async Task ReadAsync()
    {
        try
        {
            await using var read = db.CreateCommand("SELECT name, roles, alive_until > now(), started_at, status::text FROM sluice_node ORDER BY name");
            await using var rows = await read.ExecuteReaderAsync().ConfigureAwait(false);
            var nodes = new List<ClusterNode>();
            while (await rows.ReadAsync().ConfigureAwait(false))
                nodes.Add(new ClusterNode(rows.GetString(0), rows.GetString(1), rows.GetBoolean(2), rows.GetFieldValue<DateTimeOffset>(3),
                    NodeReport.FromJson(rows.IsDBNull(4) ? null : rows.GetString(4))));
            Volatile.Write(ref _nodes, nodes);
            Interlocked.Exchange(ref _readAt, time.GetTimestamp());
        }
        catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or ObjectDisposedException or InvalidOperationException)
        {
            // The database is away or the node is stopping: the last snapshot stands until a read gets through.
        }
        finally
        {
            Volatile.Write(ref _reading, 0);
        }
    }
}
