// A node in the queue database: one live process per name, its row and heartbeat by the database's
// clock, its own view of a lapsed lease when the heartbeat cannot get through, and a clean stop.
using Npgsql;
using Sluice.Core.Configuration;
using Sluice.Queue.Postgres;
using Sluice.Testing;

namespace Sluice.Queue.Tests.Postgres;

[Collection(PostgresCollection.Name)]
public sealed class PostgresNodeTests(PostgresServer server)
{
    private readonly NodeLog _log = new();

    private Task<PostgresQueueDatabase> OpenAsync(string connectionString, string node, TimeSpan lease, NodeRole roles = NodeRole.Both) =>
        PostgresQueueDatabase.OpenAsync(connectionString, node, lease, roles, TimeProvider.System, _log.Write, CancellationToken.None);

    [Fact]
    public async Task A_second_process_with_the_same_node_name_is_refused()
    {
        var db = await server.CreateDatabaseAsync();
        await using var first = await OpenAsync(db, "mx1", TimeSpan.FromSeconds(30));
        var e = await Assert.ThrowsAsync<IOException>(() => OpenAsync(db, "mx1", TimeSpan.FromSeconds(30)));
        Assert.Contains($"node mx1 is already running on 127.0.0.1:{server.Port}/", e.Message, StringComparison.Ordinal);
        Assert.Contains("give each node its own Queue:Node", e.Message, StringComparison.Ordinal);
        // The refused process left the running node's row alone.
        Assert.True(await PostgresServer.ScalarAsync<bool>(db, "SELECT alive_until > now() FROM sluice_node WHERE name = 'mx1'"));
        await using var other = await OpenAsync(db, "mx2", TimeSpan.FromSeconds(30));
        Assert.Equal("mx2", other.Node);
    }

    [Fact]
    public async Task The_heartbeat_keeps_the_row_alive_with_the_status_and_a_clean_stop_ends_it()
    {
        var db = await server.CreateDatabaseAsync();
        var lease = TimeSpan.FromSeconds(1.5);
        await using (var node = await OpenAsync(db, "mx1", lease, NodeRole.Deliver))
        {
            node.Status = () => """{"queued": 7}""";
            Assert.Equal("deliver", await PostgresServer.ScalarAsync<string>(db, "SELECT roles FROM sluice_node WHERE name = 'mx1'"));
            // Two heartbeats at least (one every lease/3) must have carried the status and moved alive_until past the first lease.
            var started = await PostgresServer.ScalarAsync<DateTime>(db, "SELECT started_at FROM sluice_node WHERE name = 'mx1'");
            await EventuallyAsync(async () => await PostgresServer.ScalarAsync<int?>(db, "SELECT (status->>'queued')::int FROM sluice_node WHERE name = 'mx1'") == 7
                && await PostgresServer.ScalarAsync<DateTime>(db, "SELECT alive_until FROM sluice_node WHERE name = 'mx1'") > started + lease + lease / 3);
            Assert.Equal(lease, node.Lease);
        }
        Assert.False(await PostgresServer.ScalarAsync<bool>(db, "SELECT alive_until > now() FROM sluice_node WHERE name = 'mx1'"));
    }

    [Fact]
    public async Task A_node_whose_heartbeat_cannot_get_through_sees_its_lease_lapse_and_renew()
    {
        var db = await server.CreateDatabaseAsync();
        await using var node = await OpenAsync(db, "mx1", TimeSpan.FromSeconds(1));
        Assert.False(node.LeaseLapsed);
        // Another session holds the node's row: the heartbeat's UPDATE waits and times out, as when the database hangs.
        await using (var blocker = new NpgsqlConnection(db))
        {
            await blocker.OpenAsync();
            await using var tx = await blocker.BeginTransactionAsync();
            await using (var hold = new NpgsqlCommand("SELECT 1 FROM sluice_node WHERE name = 'mx1' FOR UPDATE", blocker, tx))
                await hold.ExecuteScalarAsync();
            await EventuallyAsync(() => Task.FromResult(node.LeaseLapsed));
            await EventuallyAsync(() => Task.FromResult(_log.Any("node mx1: lease lapsed")));
        }
        await EventuallyAsync(() => Task.FromResult(!node.LeaseLapsed));
        await EventuallyAsync(() => Task.FromResult(_log.Any("node mx1: lease renewed")));
    }

    [Fact]
    public async Task A_node_whose_connection_was_cut_takes_its_name_again()
    {
        var db = await server.CreateDatabaseAsync();
        await using var node = await OpenAsync(db, "mx1", TimeSpan.FromSeconds(1));
        // Cut the session holding the name's lock (as a database restart does): the node takes it again on a new one.
        await PostgresServer.ScalarAsync<bool>(db, $"SELECT bool_and(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND classid = {PostgresSchema.NodeLockClass}");
        await EventuallyAsync(() => Task.FromResult(_log.Any("node mx1 holds its name again")));
        await Assert.ThrowsAsync<IOException>(() => OpenAsync(db, "mx1", TimeSpan.FromSeconds(1)));
        // Its heartbeat gets through on the new session (the lease may have lapsed in between on a loaded machine).
        await EventuallyAsync(() => Task.FromResult(!node.LeaseLapsed));
    }

    /// <summary>Waits for a condition the node reaches on its own timer (its heartbeat), for at most 15 s.</summary>
    private static async Task EventuallyAsync(Func<Task<bool>> condition)
    {
        var until = DateTime.UtcNow.AddSeconds(15);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < until, "the condition did not come true within 15 s");
            await Task.Delay(50);
        }
    }
}
