// The PostgreSQL queue store against a real private PostgreSQL: durability across reopen, delivery
// state, group commit and schema versions. (Nodes, claims and leases: PostgresNodeTests, PostgresClaimTests.)
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Queue.Postgres;
using Sluice.Testing;

namespace Sluice.Queue.Tests.Postgres;

[Collection(PostgresCollection.Name)]
public sealed class PostgresQueueStoreTests(PostgresServer server)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly NodeLog _log = new();

    private Task<PostgresQueueDatabase> OpenAsync(string connectionString, string node = "n1") =>
        PostgresQueueDatabase.OpenAsync(connectionString, node, TimeSpan.FromSeconds(30), NodeRole.Both, TimeProvider.System, _log.Write, None);

    private static byte[] Body(string text) => Encoding.ASCII.GetBytes(text);

    [Fact]
    public async Task Message_envelope_and_body_survive_reopen()
    {
        var db = await server.CreateDatabaseAsync();
        var envelope = new Envelope("jörg@x.test", ["b@y.test", "c@z.test"])
        {
            Return = DsnReturn.Headers,
            EnvelopeId = "QQ314159",
            SmtpUtf8 = true,
            EightBitMime = true,
            AuthenticatedAs = "jorg",
            Dsn = [new(DsnNotify.Success | DsnNotify.Failure, "rfc822;b@y.test"), new(DsnNotify.Never, null)],
        };
        string id;
        await using (var first = await OpenAsync(db))
            id = (await first.Open(1).AcceptAsync(envelope, null, Body("Subject: hi\r\n\r\nbody\r\n"), None)).Id;

        await using var again = await OpenAsync(db);
        var store = again.Open(1);
        var recovered = Assert.Single(await TakenBackAsync(store, 1));
        Assert.Equal(id, recovered.Id);
        Assert.Equal((1, 2), (store.MessageCount, store.RecipientCount));
        var loaded = await store.LoadAsync(recovered, None);
        var e = loaded.Envelope;
        Assert.Equal("jörg@x.test", e.Sender);
        Assert.Equal(["b@y.test", "c@z.test"], e.Recipients);
        Assert.Equal((DsnReturn.Headers, "QQ314159", true, true, false, "jorg"), (e.Return, e.EnvelopeId, e.SmtpUtf8, e.EightBitMime, e.DoubleBounce, e.AuthenticatedAs));
        Assert.Equal(envelope.Dsn, e.Dsn);
        Assert.Equal("Subject: hi\r\n\r\nbody\r\n", Encoding.ASCII.GetString(await store.ReadBodyAsync(loaded, None)));
    }

    [Fact]
    public async Task A_trace_header_names_the_id_the_row_gets_and_is_stored_in_front_of_the_body()
    {
        var db = await server.CreateDatabaseAsync();
        var ids = new List<string>();
        await using (var first = await OpenAsync(db))
        {
            var store = first.Open(1);
            foreach (var n in Enumerable.Range(0, 3))
            {
                var m = await store.AcceptAsync(new Envelope("a@x.test", [$"b{n}@y.test"]), id => Body($"Received: by x id {id}\r\n"), Body("Subject: hi\r\n"), None);
                ids.Add(m.Id);
            }
            await store.AcceptAsync(new Envelope("a@x.test", ["plain@y.test"]), null, Body("Subject: plain\r\n"), None); // no trace: the database picks the id
        }
        Assert.Equal(3, ids.Distinct().Count());

        await using var again = await OpenAsync(db);
        var reopened = again.Open(1);
        var bodies = new List<string>();
        foreach (var m in await TakenBackAsync(reopened, 4))
            bodies.Add(Encoding.ASCII.GetString(await reopened.ReadBodyAsync(await reopened.LoadAsync(m, None), None)));
        foreach (var id in ids) Assert.Contains($"Received: by x id {id}\r\nSubject: hi\r\n", bodies);
        Assert.Contains("Subject: plain\r\n", bodies);
    }

    [Fact]
    public async Task Delivery_state_survives_reopen_and_a_finished_message_is_gone()
    {
        var db = await server.CreateDatabaseAsync();
        var retryAt = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 60_000);
        await using (var first = await OpenAsync(db))
        {
            var store = first.Open(1);
            var done = await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, Body("1\r\n"), None);
            var waiting = await store.AcceptAsync(new Envelope("a@x.test", ["c@y.test", "d@y.test"]), null, Body("2\r\n"), None);
            await store.RecordAsync(done, 0, RecipientStatus.Delivered, DateTimeOffset.MinValue, "250 ok", None);
            await store.RecordAsync(waiting, 0, RecipientStatus.Failed, DateTimeOffset.MinValue, "550 no such user", None);
            await store.RecordAsync(waiting, 1, RecipientStatus.Pending, retryAt, "451 try later", None);
            Assert.Equal((1, 1), (store.MessageCount, store.RecipientCount));
        }
        await using var again = await OpenAsync(db);
        var m = Assert.Single(await TakenBackAsync(again.Open(1), 1));
        Assert.Equal((RecipientStatus.Failed, 1, "550 no such user"), (m.States[0].Status, m.States[0].Attempts, m.States[0].LastError));
        Assert.Equal((RecipientStatus.Pending, 1, retryAt, "451 try later"), (m.States[1].Status, m.States[1].Attempts, m.States[1].NextAttempt, m.States[1].LastError));
        Assert.Equal(1, m.PendingRecipients);
        Assert.Equal(1L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM sluice_message"));
    }

    [Fact]
    public async Task The_operators_hold_survives_reopen_and_a_deleted_message_is_gone()
    {
        var db = await server.CreateDatabaseAsync();
        string heldId;
        await using (var first = await OpenAsync(db))
        {
            var store = first.Open(1);
            var held = await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, Body("1\r\n"), None);
            var deleted = await store.AcceptAsync(new Envelope("a@x.test", ["c@y.test", "d@y.test"]), null, Body("2\r\n"), None);
            heldId = held.Id;
            await store.RecordHoldAsync(held.Spooled, true, None);
            Assert.Equal(2, await store.DeleteAsync(deleted.Spooled, None));
            Assert.Equal([held.Spooled], store.LiveMessages());
            Assert.Null(store.Find(deleted.Spooled.Sequence));
            Assert.Equal((1, 1), (store.MessageCount, store.RecipientCount));
        }
        await using var again = await OpenAsync(db);
        var m = Assert.Single(await TakenBackAsync(again.Open(1), 1));
        Assert.Equal((heldId, true), (m.Id, m.Held));
        Assert.Equal(1L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM sluice_message"));
    }

    [Fact]
    public async Task Concurrent_accepts_share_commits()
    {
        var db = await server.CreateDatabaseAsync();
        await using var database = await OpenAsync(db);
        var store = database.Open(1);
        var before = database.CommitStats;
        var ids = await Task.WhenAll(Enumerable.Range(0, 200).Select(i =>
            Task.Run(() => store.AcceptAsync(new Envelope("a@x.test", [$"r{i}@y.test"]), null, Body($"{i}\r\n"), None))));
        var (commits, records) = (database.CommitStats.Commits - before.Commits, database.CommitStats.Records - before.Records);
        Assert.Equal(200, ids.Select(m => m.Id).Distinct().Count());
        Assert.Equal(200, records);
        Assert.True(commits < 100, $"{commits} commits for 200 concurrent messages: not grouped");
        Assert.Equal(200L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM sluice_recipient WHERE status = 0"));
    }

    [Fact]
    public async Task A_schema_newer_than_this_build_is_refused()
    {
        var db = await server.CreateDatabaseAsync();
        await using (await OpenAsync(db)) { }
        await PostgresServer.ScalarAsync<int>(db, $"INSERT INTO sluice_schema (version) VALUES ({PostgresSchema.Latest + 1}) RETURNING version");
        var e = await Assert.ThrowsAsync<SchemaTooNewException>(() => OpenAsync(db));
        Assert.Contains($"schema version {PostgresSchema.Latest + 1}, newer than this sluice knows ({PostgresSchema.Latest})", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_schema_is_created_once_and_its_version_recorded()
    {
        var db = await server.CreateDatabaseAsync();
        await using (await OpenAsync(db)) { }
        await using (await OpenAsync(db)) { }
        Assert.Equal((long)PostgresSchema.Latest, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM sluice_schema"));
        Assert.True(_log.Any($"schema migrated from version 0 to {PostgresSchema.Latest}"));
        Assert.Contains(_log.Lines, l => l.EndsWith($"schema version {PostgresSchema.Latest}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_unreachable_database_is_named_at_start()
    {
        var e = await Assert.ThrowsAsync<IOException>(() => OpenAsync($"Host=127.0.0.1;Port={server.Port};Database=nosuchdb;Username=sluice;Timeout=5"));
        Assert.Contains($"cannot use the queue database 127.0.0.1:{server.Port}/nosuchdb (Queue:ConnectionString)", e.Message, StringComparison.Ordinal);
    }

    /// <summary>A node gives its mail back at a clean stop; opened again under its name, it takes it back by a claim.</summary>
    private static async Task<List<SpooledMessage>> TakenBackAsync(IQueueStore store, int count)
    {
        var messages = store.Recovered.ToList();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (messages.Count < count) messages.Add(await store.Claimed.ReadAsync(timeout.Token));
        return messages;
    }
}
