// Cluster-wide destination limits against a real PostgreSQL: two PostgresQueueDatabase objects on one
// database are two nodes. Slots are shared up to the limit and go with the node that held them;
// the pace is one for the whole cluster.
using Sluice.Core.Configuration;
using Sluice.Queue.Postgres;
using Sluice.Testing;

namespace Sluice.Queue.Tests.Postgres;

[Collection(PostgresCollection.Name)]
public sealed class PostgresDestinationLimitsTests(PostgresServer server)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    private static Task<PostgresQueueDatabase> NodeAsync(string db, string name) =>
        PostgresQueueDatabase.OpenAsync(db, name, TimeSpan.FromSeconds(30), NodeRole.Both, TimeProvider.System, _ => { }, None);

    [Fact]
    public async Task Two_nodes_share_a_destinations_slots_up_to_its_limit()
    {
        var db = await server.CreateDatabaseAsync();
        await using var a = await NodeAsync(db, "a");
        await using var b = await NodeAsync(db, "b");
        var (la, lb) = (a.DestinationLimits!, b.DestinationLimits!);

        Assert.True(await la.TryTakeSlotAsync("x.test", 3, None));
        Assert.True(await la.TryTakeSlotAsync("X.TEST", 3, None)); // destinations are domains: case does not matter
        Assert.True(await lb.TryTakeSlotAsync("x.test", 3, None));
        Assert.False(await lb.TryTakeSlotAsync("x.test", 3, None));
        Assert.False(await la.TryTakeSlotAsync("x.test", 3, None));
        Assert.True(await lb.TryTakeSlotAsync("y.test", 3, None)); // another destination has its own slots
        Assert.Equal(3, await SlotLocksAsync(db, "x.test"));        // one lock per slot: a refused call took none

        await la.GiveBackSlotAsync("x.test", None);
        Assert.True(await lb.TryTakeSlotAsync("x.test", 3, None));
        Assert.False(await la.TryTakeSlotAsync("x.test", 3, None));
    }

    [Fact]
    public async Task A_nodes_slots_go_with_it()
    {
        var db = await server.CreateDatabaseAsync();
        await using var b = await NodeAsync(db, "b");
        var a = await NodeAsync(db, "a");
        Assert.True(await a.DestinationLimits!.TryTakeSlotAsync("x.test", 2, None));
        Assert.True(await a.DestinationLimits!.TryTakeSlotAsync("x.test", 2, None));
        Assert.False(await b.DestinationLimits!.TryTakeSlotAsync("x.test", 2, None));

        await a.DisposeAsync(); // a clean stop; a killed node's go when PostgreSQL sees its connection end (ClusterTests)
        Assert.True(await b.DestinationLimits!.TryTakeSlotAsync("x.test", 2, None));
        Assert.True(await b.DestinationLimits!.TryTakeSlotAsync("x.test", 2, None));
        Assert.False(await b.DestinationLimits!.TryTakeSlotAsync("x.test", 2, None));
    }

    [Fact]
    public async Task The_pace_is_one_for_every_node()
    {
        var db = await server.CreateDatabaseAsync();
        await using var a = await NodeAsync(db, "a");
        await using var b = await NodeAsync(db, "b");
        // 60 a minute: one a second, a burst of one.
        Assert.Equal(TimeSpan.Zero, await a.DestinationLimits!.TryTakeTurnAsync("x.test", Second, 1, None));
        var wait = await b.DestinationLimits!.TryTakeTurnAsync("x.test", Second, 1, None);
        Assert.InRange(wait, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(1));
        Assert.Equal(TimeSpan.Zero, await b.DestinationLimits!.TryTakeTurnAsync("y.test", Second, 1, None));
        // A burst of ten turns shared by both nodes, then a wait of up to a turn's interval. A second between
        // turns, so a slow machine's eleven round trips cannot refill one and make the wait zero.
        for (int i = 0; i < 10; i++)
            Assert.Equal(TimeSpan.Zero, await (i % 2 == 0 ? a : b).DestinationLimits!.TryTakeTurnAsync("z.test", Second, 10, None));
        Assert.InRange(await a.DestinationLimits!.TryTakeTurnAsync("z.test", Second, 10, None), TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(1));
    }

    /// <summary>Advisory locks held on the destination's slots (two-key locks whose first key is its hash; pg_locks shows it unsigned).</summary>
    private static async Task<long> SlotLocksAsync(string db, string destination)
    {
        await using var source = Npgsql.NpgsqlDataSource.Create(db);
        await using var count = source.CreateCommand("""
            SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted
            AND classid::bigint = hashtext($1)::bigint & 4294967295
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """);
        count.Parameters.Add(new Npgsql.NpgsqlParameter { Value = destination });
        return (long)(await count.ExecuteScalarAsync())!;
    }
}
