// The operator contract as an outside check drives it: serve refuses a bad config with file, key
// and reason; queue stat counts what waits, per queue and channel.
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed class OperatorContractTests
{
    [Fact]
    public async Task Serve_with_a_bad_config_exits_non_zero_naming_file_key_and_reason()
    {
        using var dir = new TempDirectory();
        var config = dir.File("bad.json");
        await File.WriteAllTextAsync(config, """{ "Queue": { "Count": 2, "Load": 7 }, "Smtp": { "Lisen": [] } }""");
        var (exit, _, stderr) = await SluiceProcess.RunAsync(dir.Path, "", "serve", "--config", config);
        Assert.Equal(78, exit);
        Assert.Contains($"{config}: key 'Queue:Load': must be more than 0 and at most 1", stderr, StringComparison.Ordinal);
        Assert.Contains($"{config}: key 'Smtp:Lisen': unknown key", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("relay", "--roles: \"relay\" is not a list of roles (receive, deliver, or receive,deliver)")]
    [InlineData("deliver", "--roles: a node with the file spool receives and delivers: roles other than receive,deliver need Queue:Store \"postgres\"")]
    public async Task Serve_refuses_roles_it_cannot_take(string roles, string expected)
    {
        using var dir = new TempDirectory();
        var config = dir.File("sluice.json");
        await File.WriteAllTextAsync(config, $$"""{ "DataDir": "{{dir.File("var")}}" }""");
        var (exit, _, stderr) = await SluiceProcess.RunAsync(dir.Path, "", "serve", "--config", config, "--roles", roles);
        Assert.Equal(78, exit);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Queue_stat_counts_deferred_mail_per_queue_and_channel()
    {
        // Remote mail routed to a closed port stays deferred in the queue.
        await using var sluice = await Instance.StartAsync(c =>
        {
            c["Queue"] = new { Count = 2 };
            c["Routes"] = new Dictionary<string, string> { ["*"] = "127.0.0.1:1" };
        });
        var env = new Dictionary<string, string> { ["SLUICE__Smtp__Listen__0"] = $"127.0.0.1:{sluice.Process.SmtpPort}" };
        for (int i = 0; i < 3; i++)
        {
            var (exit, _, stderr) = await SluiceProcess.RunAsync(sluice.Dir.Path, "Subject: x\n\nx\n", env, "inject", "--config", sluice.ConfigFile, "-f", "a@client.test", $"u{i}@remote.test");
            Assert.True(exit == 0, stderr);
        }
        await sluice.Process.WaitForLogAsync(l => l.Contains("deferral: 451 4.4.1 127.0.0.1:1: connect to 127.0.0.1:1 failed", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        Assert.Equal(0, await sluice.Process.StopAsync());
        var (code, stdout, err) = await SluiceProcess.RunAsync(sluice.Dir.Path, "", "queue", "stat", "--config", sluice.ConfigFile);
        Assert.True(code == 0, err);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("queue1: messages ", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("queue2: messages ", lines[1], StringComparison.Ordinal);
        Assert.Equal("total: messages 3 recipients 3 (local 0, remote 3)", lines[2]);
    }
}
