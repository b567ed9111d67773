// `sluice queue stat` over the queue database, read-only and beside running nodes: per node and queue,
// the messages with a pending recipient and the pending recipients by domain (the caller maps domains
// to channels, as it does for the file spool). Mail no live node holds is counted as unclaimed.
using Npgsql;

namespace Sluice.Queue.Postgres;

public static class PostgresQueueCounts
{
    // Where a message is: "node N queueQ" while a live node holds it, else unclaimed (any deliver node may take it).
    private const string Holder = """
        CASE WHEN m.node IN (SELECT name FROM sluice_node WHERE alive_until > now()) THEN 'node ' || m.node || ' queue' || m.queue ELSE 'unclaimed' END
        """;

    public static async Task<SortedDictionary<string, QueueCounts>> ReadAsync(string connectionString, CancellationToken ct)
    {
        await using var db = NpgsqlDataSource.Create(connectionString);
        var counts = new SortedDictionary<string, QueueCounts>(StringComparer.Ordinal);
        QueueCounts Of(string holder) => counts.TryGetValue(holder, out var c) ? c : counts[holder] = new QueueCounts();
        try
        {
            await using (var messages = db.CreateCommand($"""
                SELECT {Holder}, count(*)::int FROM sluice_message m
                WHERE EXISTS (SELECT 1 FROM sluice_recipient r WHERE r.message_id = m.id AND r.status = 0) GROUP BY 1
                """))
            await using (var rows = await messages.ExecuteReaderAsync(ct).ConfigureAwait(false))
                while (await rows.ReadAsync(ct).ConfigureAwait(false)) Of(rows.GetString(0)).Messages = rows.GetInt32(1);
            // The domain is what follows the last '@' (a quoted local part may hold one too).
            await using (var recipients = db.CreateCommand($"""
                SELECT {Holder}, lower(substring(r.address from '[^@]*$')), count(*)::int
                FROM sluice_message m JOIN sluice_recipient r ON r.message_id = m.id WHERE r.status = 0 GROUP BY 1, 2
                """))
            await using (var rows = await recipients.ExecuteReaderAsync(ct).ConfigureAwait(false))
                while (await rows.ReadAsync(ct).ConfigureAwait(false)) Of(rows.GetString(0)).PendingByDomain[rows.GetString(1)] = rows.GetInt32(2);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            // No node has created the schema yet: nothing is queued.
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            throw new IOException($"cannot read the queue database (Queue:ConnectionString): {e.Message}", e);
        }
        return counts;
    }
}

public sealed class QueueCounts
{
    public int Messages { get; set; }
    public Dictionary<string, int> PendingByDomain { get; } = new(StringComparer.OrdinalIgnoreCase);
}
