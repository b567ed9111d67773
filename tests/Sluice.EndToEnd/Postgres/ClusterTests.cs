// Three `sluice serve` processes on one queue database (issue 8): node a receives only, b receives and
// delivers, c delivers only. 10,000 messages go in over SMTP through a and b; c is killed with SIGKILL
// while it holds mail it claimed. Every message that got its 250 reaches the sinks, b takes over what c
// held once c's lease has run out, the duplicates stay within c's deliveries in flight, and no
// destination ever sees more sessions from the whole cluster than its DestinationConcurrency.
using System.Diagnostics;
using Sluice.Testing;

namespace Sluice.EndToEnd.Postgres;

[Collection(PostgresCollection.Name)]
public sealed class ClusterTests(PostgresServer server)
{
    private const int Messages = 10_000;
    private const int SessionsPerReceiver = 8;
    /// <summary>Remote deliveries one queue runs at once; c has one queue, so at most this many were in flight when it died.</summary>
    private const int RemoteConcurrency = 10;
    private const int DestinationConcurrency = 10;

    [Fact]
    public async Task Three_nodes_deliver_every_acknowledged_message_when_a_delivering_node_is_killed_mid_run()
    {
        var db = await server.CreateDatabaseAsync();
        await using var sinks = new DestinationSinks(["d0.test", "d1.test", "d2.test", "d3.test"]);
        Action<Dictionary<string, object>> Node(string name, int queues) => c =>
        {
            c["Queue"] = new { Store = "postgres", ConnectionString = db, Node = name, Lease = "3s", Count = queues };
            c["Routes"] = sinks.Routes;
            c["Channels"] = new object[]
            {
                new { Name = "local", Transport = "maildir", Domains = new[] { "localhost", "local.test" } },
                new { Name = "remote", Transport = "smtp", Concurrency = RemoteConcurrency, DestinationConcurrency },
            };
        };
        await using var a = await Instance.StartAsync(Node("a", 2), "--roles", "receive");
        await using var b = await Instance.StartAsync(Node("b", 2));
        await using var c = await Instance.StartAsync(Node("c", 1), "--roles", "deliver");
        Assert.Contains(c.Process.Log, l => l.Contains("roles: deliver only: no SMTP listener", StringComparison.Ordinal));

        var clock = Stopwatch.StartNew();
        var perSession = Messages / (2 * SessionsPerReceiver);
        var injection = Task.WhenAll(Enumerable.Range(0, 2 * SessionsPerReceiver).Select(s =>
            SendAsync((s % 2 == 0 ? a : b).Process.SmtpPort, Enumerable.Range(s * perSession, perSession))));

        // Mid-run: c has delivered a few hundred of the receive-only node's messages, and is killed while it holds more. It is
        // frozen (SIGSTOP) to look at what it holds, so that the look and the kill see the same state; let go when it holds none.
        await c.Process.WaitForLogAsync(l => l.Contains("delivery 300: success", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
        long heldByTheDead;
        for (var tries = 0; ; tries++)
        {
            await SignalAsync(c.Process.Pid, "STOP");
            heldByTheDead = await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM sluice_message WHERE node = 'c'");
            if (heldByTheDead > 0) break;
            await SignalAsync(c.Process.Pid, "CONT");
            Assert.True(tries < 300, "c never held mail while the others were receiving");
            await Task.Delay(100);
        }
        c.Process.Kill();

        var acknowledged = (await injection).SelectMany(ids => ids).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(Messages, acknowledged.Count);
        await sinks.WaitForDistinctAsync(Messages, TimeSpan.FromSeconds(120));
        var elapsed = clock.Elapsed;

        Assert.All(acknowledged, id => Assert.True(sinks.ByMessageId.ContainsKey(id), $"{id} got its 250 but was never delivered"));
        var duplicates = sinks.Received - sinks.ByMessageId.Count;
        Assert.True(duplicates <= RemoteConcurrency, $"{duplicates} duplicates; at most {RemoteConcurrency} deliveries were in flight at c");
        Assert.Equal(0L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM sluice_message WHERE node = 'c'"));
        Assert.Contains(b.Process.Log, l => l.Contains("claimed msg", StringComparison.Ordinal));
        // DestinationConcurrency holds across the cluster: b and c delivered to every destination at once, and
        // the sink counts every open session (idle pooled ones too), yet never saw more than the one limit.
        foreach (var domain in sinks.Domains)
            Assert.True(sinks.MaxSessions(domain) <= DestinationConcurrency, $"{domain}: {sinks.MaxSessions(domain)} sessions at once, limit {DestinationConcurrency}");
        Console.WriteLine($"cluster: {Messages} messages in {elapsed.TotalSeconds:0.0}s; c held {heldByTheDead} when killed; {duplicates} duplicates; "
            + string.Join(", ", sinks.Domains.Select(d => $"{d} max {sinks.MaxSessions(d)} sessions")));
    }

    /// <summary>One SMTP session sending messages numbered <paramref name="numbers"/> (pipelined); returns the Message-IDs that got a 250.</summary>
    private static async Task<List<string>> SendAsync(int port, IEnumerable<int> numbers)
    {
        var acknowledged = new List<string>();
        await using var wire = await SmtpWire.OpenAsync(port);
        Assert.StartsWith("250", await wire.CommandAsync("EHLO client.test"), StringComparison.Ordinal);
        foreach (var n in numbers)
        {
            var (id, to) = ($"m{n}@cluster.test", $"user{n}@d{n % 4}.test");
            await wire.WriteAsync($"MAIL FROM:<sender@client.test>\r\nRCPT TO:<{to}>\r\nDATA\r\n");
            var replies = new[] { await wire.ReadReplyAsync(), await wire.ReadReplyAsync(), await wire.ReadReplyAsync() };
            if (!replies[2].StartsWith("354", StringComparison.Ordinal)) continue;
            await wire.WriteAsync($"Message-ID: <{id}>\r\nFrom: <sender@client.test>\r\nTo: <{to}>\r\nSubject: cluster {n}\r\n\r\nhello\r\n.\r\n");
            if ((await wire.ReadReplyAsync()).StartsWith("250", StringComparison.Ordinal)) acknowledged.Add($"<{id}>");
        }
        await wire.CommandAsync("QUIT");
        return acknowledged;
    }

    private static async Task SignalAsync(int pid, string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        Assert.Equal(0, kill.ExitCode);
    }
}
