// The operator's views of a cluster (issue 8): `queue stat`, `top --once` and /metrics on any node show
// every node on the queue database and the cluster's sum. A receive-only node's mail waits unclaimed
// until a delivering node starts, which then takes it and delivers it.
using Sluice.Operate;
using Sluice.Testing;

namespace Sluice.EndToEnd.Postgres;

[Collection(PostgresCollection.Name)]
public sealed class ClusterViewTests(PostgresServer server)
{
    [Fact]
    public async Task Every_node_and_the_cluster_show_in_queue_stat_top_and_metrics()
    {
        var db = await server.CreateDatabaseAsync();
        Action<Dictionary<string, object>> Node(string name) => c => c["Queue"] = new { Store = "postgres", ConnectionString = db, Node = name, Lease = "2s" };
        await using var a = await Instance.StartAsync(Node("a"), "--roles", "receive");
        for (int i = 0; i < 3; i++) await TestMail.SendAsync(a.Process.SmtpPort, $"u{i}@remote.test");

        var (exit, stat, stderr) = await a.RunVerbAsync("queue", "stat");
        Assert.True(exit == 0, stderr);
        Assert.Contains("unclaimed: messages 3 recipients 3 (local 0, remote 3)", stat, StringComparison.Ordinal);
        Assert.Contains("total: messages 3", stat, StringComparison.Ordinal);

        await using var b = await Instance.StartAsync(Node("b"));
        await b.Sink.WaitForCountAsync(3, TimeSpan.FromSeconds(30));
        // Each node reports at its heartbeat (a third of the lease): wait for b's report of the three deliveries.
        string top = "";
        await Until(async () => (top = (await b.RunVerbAsync("top", "--once")).Stdout).Contains("node b alive roles receive,deliver messages 0", StringComparison.Ordinal)
            && top.Contains("delivered/s", StringComparison.Ordinal));
        Assert.Matches(@"(?m)^node a alive roles receive messages 0 recipients 0 active 0 accepted/s [\d.]+ delivered/s 0 deferred 0 bounced 0$", top);
        Assert.Matches(@"(?m)^cluster nodes 2 alive 2 messages 0 recipients 0 active 0 accepted/s [\d.]+ delivered/s [\d.]+ deferred 0 bounced 0$", top);

        using var http = AdminSocket.Client(b.Dir.File("var/admin.sock"));
        string metrics = "";
        await Until(async () => (metrics = await http.GetStringAsync("/metrics")).Contains("sluice_cluster_node_delivered_recipients{node=\"b\"} 3", StringComparison.Ordinal));
        Assert.Contains("sluice_cluster_node_up{node=\"a\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("sluice_cluster_node_accepted_messages{node=\"a\"} 3", metrics, StringComparison.Ordinal);

        Assert.Equal(0, await a.Process.StopAsync()); // a clean stop ends its lease at once
        await Until(async () => (top = (await b.RunVerbAsync("top", "--once")).Stdout).Contains("node a gone roles receive", StringComparison.Ordinal));
        Assert.Contains("cluster nodes 2 alive 1 ", top, StringComparison.Ordinal);
        Assert.Contains("total: messages 0 recipients 0", (await b.RunVerbAsync("queue", "stat")).Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_reload_of_one_node_reloads_the_others()
    {
        var db = await server.CreateDatabaseAsync();
        Action<Dictionary<string, object>> Node(string name) => c => c["Queue"] = new { Store = "postgres", ConnectionString = db, Node = name, Lease = "2s" };
        await using var a = await Instance.StartAsync(Node("a"), "--roles", "receive");
        await using var b = await Instance.StartAsync(Node("b"));
        // b's file changes (a route more); one `sluice reload` on a, and b has re-read its own file.
        ((Dictionary<string, string>)b.Config["Routes"])["elsewhere.test"] = "127.0.0.1:2";
        await b.WriteConfigAsync();
        var (exit, _, stderr) = await a.RunVerbAsync("reload");
        Assert.True(exit == 0, stderr);
        await b.WaitForLogAsync("reload (node a reloaded): configuration reloaded (2 channels, 2 routes)");
        Assert.DoesNotContain(a.Process.Log, l => l.Contains("reload (node", StringComparison.Ordinal)); // a node does not answer its own notice
    }

    /// <summary>Asks again until the answer is there: the views change at each node's heartbeat, an event outside this process.</summary>
    private static async Task Until(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the cluster view did not show it within 30 s");
            await Task.Delay(200);
        }
    }
}
