// Claims on a shared queue, with several nodes (several PostgresQueueDatabase objects) in one process:
// a live node's mail stays its own, mail no node holds is claimed on a notification, nodes claiming at
// once split it, a lapsed node's mail moves and its late outcome is not written, a clean stop gives mail back.
using System.Text;
using Npgsql;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Queue.Postgres;
using Sluice.Testing;

namespace Sluice.Queue.Tests.Postgres;

[Collection(PostgresCollection.Name)]
public sealed class PostgresClaimTests(PostgresServer server)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly TimeSpan LongLease = TimeSpan.FromSeconds(30);
    private readonly NodeLog _log = new();

    private Task<PostgresQueueDatabase> OpenAsync(string db, string node, TimeSpan lease, NodeRole roles = NodeRole.Both) =>
        PostgresQueueDatabase.OpenAsync(db, node, lease, roles, TimeProvider.System, _log.Write, None);

    private static Task<QueuedMessage> AcceptAsync(IQueueStore store, string to) =>
        store.AcceptAsync(new Envelope("a@x.test", [to]), null, Encoding.ASCII.GetBytes($"To: {to}\r\n\r\nhi\r\n"), None);

    [Fact]
    public async Task A_live_nodes_mail_stays_its_own_and_mail_no_node_holds_is_claimed_on_its_notification()
    {
        var db = await server.CreateDatabaseAsync();
        // Leases of 30 s: the fallback poll cannot come within the test's wait, so the claim is the notification's doing.
        await using var deliverer = await OpenAsync(db, "d1", LongLease, NodeRole.Deliver);
        var queue = deliverer.Open(1);
        var own = await AcceptAsync(queue, "own@y.test");
        await using var receiver = await OpenAsync(db, "r1", LongLease, NodeRole.Receive);
        var intake = receiver.Open(1);
        var received = await AcceptAsync(intake, "other@y.test");
        Assert.Equal(0, intake.MessageCount); // a receive-only node holds none of the mail it takes

        var claimed = await NextClaimAsync(queue);
        Assert.Equal(received.Spooled.Sequence, claimed.Sequence);
        Assert.Equal("d1", await NodeOfAsync(db, claimed.Sequence));
        Assert.Equal((2, 2), (queue.MessageCount, queue.RecipientCount));
        var loaded = await queue.LoadAsync(claimed, None);
        Assert.Equal(["other@y.test"], loaded.Envelope.Recipients);
        Assert.Equal("To: other@y.test\r\n\r\nhi\r\n", Encoding.ASCII.GetString(await queue.ReadBodyAsync(loaded, None)));

        await using var second = await OpenAsync(db, "d2", LongLease);
        second.Open(1);
        Assert.False(await second.ClaimRoundAsync());
        Assert.Equal("d1", await NodeOfAsync(db, own.Spooled.Sequence));
        Assert.Equal("d1", await NodeOfAsync(db, claimed.Sequence));
    }

    [Fact]
    public async Task Nodes_claiming_at_once_split_the_mail_without_overlap()
    {
        var db = await server.CreateDatabaseAsync();
        const int Messages = 500;
        await using (var receiver = await OpenAsync(db, "r1", LongLease, NodeRole.Receive))
        {
            var store = receiver.Open(1);
            await Task.WhenAll(Enumerable.Range(0, Messages).Select(i => AcceptAsync(store, $"u{i}@y.test")));
        }
        await using var a = await OpenAsync(db, "a", LongLease, NodeRole.Deliver);
        await using var b = await OpenAsync(db, "b", LongLease, NodeRole.Deliver);
        IQueueStore[] queues = [a.Open(1), a.Open(2), b.Open(1), b.Open(2)];
        var taken = new List<ulong>[queues.Length];
        for (int i = 0; i < queues.Length; i++) taken[i] = [];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (taken.Sum(t => t.Count) < Messages)
        {
            var reads = queues.Select(q => q.Claimed.WaitToReadAsync(timeout.Token).AsTask()).ToArray();
            await Task.WhenAny(reads);
            for (int i = 0; i < queues.Length; i++)
                while (queues[i].Claimed.TryRead(out var m)) taken[i].Add(m.Sequence);
        }
        var all = taken.SelectMany(t => t).ToList();
        Assert.Equal(Messages, all.Count);
        Assert.Equal(Messages, all.Distinct().Count());
        Assert.Equal(Messages, queues.Sum(q => q.MessageCount));
        // The database agrees: each message is held by the node whose queue took it, in that queue.
        for (int i = 0; i < queues.Length; i++)
            Assert.Equal((long)taken[i].Count, await PostgresServer.ScalarAsync<long>(db,
                $"SELECT count(*) FROM sluice_message WHERE node = '{(i < 2 ? "a" : "b")}' AND queue = {queues[i].Number}"));
    }

    [Fact]
    public async Task A_lapsed_nodes_mail_moves_to_a_live_node_and_its_late_outcome_is_not_written()
    {
        var db = await server.CreateDatabaseAsync();
        var lease = TimeSpan.FromSeconds(1);
        await using var lapsing = await OpenAsync(db, "a", lease);
        var mine = lapsing.Open(1);
        var first = await AcceptAsync(mine, "one@y.test");
        var second = await AcceptAsync(mine, "two@y.test");
        // b's lease is long, so a loaded machine cannot lapse it too and hand the mail back to a; its claim is driven below.
        await using var survivor = await OpenAsync(db, "b", LongLease);
        var theirs = survivor.Open(1);

        Task<bool> mayDeliver;
        await using (var blocker = new NpgsqlConnection(db))
        {
            // Node a's heartbeat cannot get through (its row is locked, as when its database link hangs): its lease runs out.
            await blocker.OpenAsync();
            await using var tx = await blocker.BeginTransactionAsync();
            await using (var hold = new NpgsqlCommand("SELECT 1 FROM sluice_node WHERE name = 'a' FOR UPDATE", blocker, tx))
                await hold.ExecuteScalarAsync();
            // Until a's lease has run out by the database's clock, then one claim round by b.
            await PostgresServer.ScalarAsync<object>(db, "SELECT pg_sleep(greatest(0, extract(epoch FROM alive_until - now())) + 0.05) FROM sluice_node WHERE name = 'a'");
            await survivor.ClaimRoundAsync();
            var moved = new[] { (await NextClaimAsync(theirs)).Sequence, (await NextClaimAsync(theirs)).Sequence };
            Assert.Equal([first.Spooled.Sequence, second.Spooled.Sequence], moved.Order());
            // a sees its own lease lapsed no later than the database let b claim.
            Assert.True(lapsing.LeaseLapsed);

            // An outcome a reached late is not written over b's message: a drops it.
            await mine.RecordAsync(first, 0, RecipientStatus.Delivered, DateTimeOffset.MinValue, "250 ok", None);
            Assert.Null(mine.Find(first.Spooled.Sequence));
            Assert.Equal(0, await PostgresServer.ScalarAsync<int>(db, $"SELECT attempts FROM sluice_recipient WHERE message_id = {first.Spooled.Sequence}"));
            Assert.True(_log.Any($"msg {first.Id}: another node holds it now"));

            // No delivery starts while a's lease has lapsed.
            mayDeliver = mine.MayDeliverAsync(second.Spooled, None).AsTask();
            Assert.False(mayDeliver.IsCompleted);
        }
        // Renewed, a finds the message is b's now and drops it rather than deliver it.
        Assert.False(await mayDeliver.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.False(lapsing.LeaseLapsed);
        Assert.Equal((0, 0), (mine.MessageCount, mine.RecipientCount));
        Assert.Equal("b", await NodeOfAsync(db, second.Spooled.Sequence));
        Assert.Equal(2, theirs.MessageCount);
    }

    [Fact]
    public async Task A_clean_stop_gives_the_mail_back_and_a_running_node_takes_it_at_once()
    {
        var db = await server.CreateDatabaseAsync();
        await using var staying = await OpenAsync(db, "b", LongLease);
        var theirs = staying.Open(1);
        ulong sequence;
        await using (var leaving = await OpenAsync(db, "a", LongLease))
            sequence = (await AcceptAsync(leaving.Open(3), "x@y.test")).Spooled.Sequence;
        // b's poll comes every 30 s: the notification sent with the release wakes it.
        Assert.Equal(sequence, (await NextClaimAsync(theirs)).Sequence);
        Assert.Equal("b", await NodeOfAsync(db, sequence));
        Assert.True(_log.Any("node a: 1 message released to the other nodes"));
    }

    [Fact]
    public async Task A_node_restarted_receive_only_gives_back_the_mail_it_held_as_a_deliverer()
    {
        var db = await server.CreateDatabaseAsync();
        await using var other = await OpenAsync(db, "b", LongLease, NodeRole.Deliver);
        var theirs = other.Open(1);
        // Mail held under a's name as a deliver node that was killed (no release): the row says a still holds it.
        await using (var connection = new NpgsqlConnection(db))
        {
            await connection.OpenAsync();
            await using var insert = new NpgsqlCommand("""
                INSERT INTO sluice_node VALUES ('a', 'receive,deliver', now(), now() + interval '1 hour', NULL);
                WITH m AS (INSERT INTO sluice_message (queue, received_at, sender, flags, dsn_return, body_length, body, node)
                           VALUES (1, now(), 'a@x.test', 0, 0, 2, 'x'::bytea, 'a') RETURNING id)
                INSERT INTO sluice_recipient (message_id, idx, address, notify) SELECT id, 0, 'b@y.test', 0 FROM m;
                """, connection);
            await insert.ExecuteNonQueryAsync();
        }
        Assert.False(await other.ClaimRoundAsync());
        await using var receiveOnly = await OpenAsync(db, "a", LongLease, NodeRole.Receive);
        Assert.Equal("b@y.test", (await theirs.LoadAsync(await NextClaimAsync(theirs), None)).Envelope.Recipients.Single());
        Assert.True(_log.Any("node a: 1 message released to the other nodes"));
    }

    private static async Task<SpooledMessage> NextClaimAsync(IQueueStore store)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        return await store.Claimed.ReadAsync(timeout.Token);
    }

    private static Task<string?> NodeOfAsync(string db, ulong message) =>
        PostgresServer.ScalarAsync<string?>(db, $"SELECT node FROM sluice_message WHERE id = {message}");
}
