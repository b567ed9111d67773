// `sluice serve` with its queue in PostgreSQL (Queue.Store "postgres"): mail accepted over SMTP is
// delivered, a SIGKILL loses nothing (and `queue stat` counts it from the database meanwhile), and a
// schema newer than the binary stops it at start.
using MailKit.Net.Smtp;
using MimeKit;
using System.Text.RegularExpressions;
using Sluice.Testing;

namespace Sluice.EndToEnd.Postgres;

[Collection(PostgresCollection.Name)]
public sealed partial class PostgresStoreTests(PostgresServer server)
{
    private static Action<Dictionary<string, object>> OnPostgres(string connectionString) =>
        c => c["Queue"] = new { Store = "postgres", ConnectionString = connectionString, Count = 2, Node = "mx1", Lease = "3s" };

    [Fact]
    public async Task Mail_accepted_over_smtp_is_delivered_and_leaves_the_database()
    {
        var db = await server.CreateDatabaseAsync();
        await using var sluice = await Instance.StartAsync(OnPostgres(db));
        await sluice.WaitForLogAsync("queue database: 127.0.0.1:");
        await Task.WhenAll(Enumerable.Range(0, 4).Select(s => SendAsync(sluice, Enumerable.Range(s * 50, 50).Select(i => $"r{i}@remote.test"))));
        await SendAsync(sluice, ["alice@local.test"]);

        await sluice.Sink.WaitForCountAsync(200, TimeSpan.FromSeconds(60));
        Assert.Contains("Subject: test alice@local.test", await sluice.WaitForMaildirAsync("alice"), StringComparison.Ordinal);
        Assert.Equal(200, sluice.Sink.Messages.Select(m => m.Recipients.Single()).Distinct().Count());
        Assert.Equal(0, await sluice.Process.StopAsync());
        Assert.Contains(sluice.Process.Log, l => l.Contains("sluice: started with 2 queues under PostgreSQL 127.0.0.1:", StringComparison.Ordinal));
        Assert.Equal(0L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM sluice_message"));
    }

    [Fact]
    public async Task Queued_mail_survives_a_SIGKILL_and_is_delivered_after_restart()
    {
        var db = await server.CreateDatabaseAsync();
        await using var sluice = await Instance.StartAsync(OnPostgres(db));
        sluice.Sink.StopListening(); // every delivery is deferred: the mail stays queued
        const int count = 30;
        await SendAsync(sluice, Enumerable.Range(0, count).Select(i => $"r{i}@remote.test"));
        Assert.Equal((long)count, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM sluice_message"));

        sluice.Process.Kill();
        await sluice.Process.DisposeAsync();
        // queue stat reads the database itself, with no server running.
        var (exit, stat, stderr) = await sluice.RunVerbAsync("queue", "stat");
        Assert.True(exit == 0, stderr);
        Assert.Contains($"total: messages {count} recipients {count} (local 0, remote {count})", stat, StringComparison.Ordinal);
        sluice.Sink.StartListening();
        await sluice.RestartAsync();
        await sluice.Sink.WaitForCountAsync(count, TimeSpan.FromSeconds(60));
        Assert.Equal(count, sluice.Sink.Messages.Select(m => m.Recipients.Single()).Distinct().Count());
        var recovered = sluice.Process.Log.Select(l => RecoveredLine().Match(l)).Where(m => m.Success)
            .Sum(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(count, recovered);
    }

    [Fact]
    public async Task Readyz_says_not_ready_while_the_database_is_down_and_ready_once_it_is_back()
    {
        var db = await server.CreateDatabaseAsync();
        var port = LoopbackPort.Free();
        await using var sluice = await Instance.StartAsync(c =>
        {
            OnPostgres(db)(c);
            c["Http"] = new { Listen = $"127.0.0.1:{port}", ReadToken = "0123456789abcdef0123456789abcdef" };
        });
        using var tcp = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
        async Task<(System.Net.HttpStatusCode, string)> Readyz()
        {
            using var reply = await tcp.GetAsync("readyz");
            return (reply.StatusCode, await reply.Content.ReadAsStringAsync());
        }
        Assert.Equal((System.Net.HttpStatusCode.OK, "ready\n"), await Readyz());

        await server.StopAsync(immediate: true);
        try
        {
            Assert.Equal((System.Net.HttpStatusCode.ServiceUnavailable, "not ready\n"), await Readyz());
        }
        finally
        {
            await server.StartAsync();
        }
        await sluice.WaitForLogAsync("queue database: back");
        // A pooled connection the restart broke may fail one more query; the next one opens afresh.
        var after = new List<(System.Net.HttpStatusCode, string)>();
        for (int i = 0; i < 3 && (after.Count == 0 || after[^1].Item1 != System.Net.HttpStatusCode.OK); i++) after.Add(await Readyz());
        Assert.Equal((System.Net.HttpStatusCode.OK, "ready\n"), after[^1]);
    }

    [Fact]
    public async Task While_the_database_restarts_mail_gets_451_and_afterwards_everything_is_delivered_without_a_restart()
    {
        var db = await server.CreateDatabaseAsync();
        await using var sluice = await Instance.StartAsync(OnPostgres(db));
        sluice.Sink.StopListening(); // deferrals keep delivery outcomes flowing into the database during the outage
        await SendAsync(sluice, Enumerable.Range(0, 10).Select(i => $"before{i}@remote.test"));

        await server.StopAsync(immediate: true);
        var refused = await Assert.ThrowsAsync<SmtpCommandException>(() => SendAsync(sluice, ["during@remote.test"]));
        Assert.Equal(451, (int)refused.StatusCode);
        Assert.Contains("4.3.0", refused.Message, StringComparison.Ordinal);

        await server.StartAsync();
        await sluice.WaitForLogAsync("queue database: back; node mx1 holds its name again");
        sluice.Sink.StartListening();
        // A connection broken by the restart may still fail one transaction: the client retries that message, as SMTP
        // clients do. Only that one: the messages before it have their 250, and sending them again would duplicate them.
        foreach (var rcpt in Enumerable.Range(0, 10).Select(i => $"after{i}@remote.test"))
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    await SendAsync(sluice, [rcpt]);
                    break;
                }
                catch (SmtpCommandException e) when ((int)e.StatusCode == 451 && attempt < 3) { }
            }
        Assert.Equal(0, (await sluice.RunVerbAsync("queue", "flush")).Exit); // ends the sink's back-off now
        await sluice.Sink.WaitForCountAsync(20, TimeSpan.FromSeconds(90));
        var delivered = sluice.Sink.Messages.Select(m => m.Recipients.Single()).ToHashSet();
        Assert.Equal(20, delivered.Count(r => r.StartsWith("before", StringComparison.Ordinal) || r.StartsWith("after", StringComparison.Ordinal)));
        Assert.DoesNotContain("during@remote.test", delivered);
    }

    [Fact]
    public async Task A_queue_database_with_a_newer_schema_stops_the_server_at_start()
    {
        var db = await server.CreateDatabaseAsync();
        await PostgresServer.ScalarAsync<int>(db, "CREATE TABLE sluice_schema (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now()); INSERT INTO sluice_schema VALUES (99); SELECT 0");
        using var dir = new TempDirectory();
        await File.WriteAllTextAsync(dir.File("sluice.json"), System.Text.Json.JsonSerializer.Serialize(new
        {
            DataDir = dir.File("var"),
            Smtp = new { Listen = new[] { "127.0.0.1:0" } },
            Queue = new { Store = "postgres", ConnectionString = db },
        }));
        var (exit, _, stderr) = await SluiceProcess.RunAsync(dir.Path, "", "serve", "--config", dir.File("sluice.json"));
        Assert.Equal(69, exit);
        Assert.Contains("the queue database has schema version 99, newer than this sluice knows", stderr, StringComparison.Ordinal);
    }

    /// <summary>One SMTP session sending one message to each recipient; returns when every one has its 250.</summary>
    private static async Task SendAsync(Instance sluice, IEnumerable<string> recipients)
    {
        using var client = new SmtpClient { Timeout = 30_000 };
        await client.ConnectAsync("127.0.0.1", sluice.Process.SmtpPort, MailKit.Security.SecureSocketOptions.None);
        foreach (var rcpt in recipients)
        {
            var message = new MimeMessage { Subject = $"test {rcpt}", Body = new TextPart("plain") { Text = "hello\r\n" } };
            message.From.Add(MailboxAddress.Parse("sender@client.test"));
            message.To.Add(MailboxAddress.Parse(rcpt));
            await client.SendAsync(message);
        }
        await client.DisconnectAsync(true);
    }

    [GeneratedRegex(@"queue\d+: (\d+) messages, \d+ recipients recovered")]
    private static partial Regex RecoveredLine();
}
