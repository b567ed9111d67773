// `sluice queue flush` finds the server by DataDir/sluice.pid (`sluice reload` by its admin socket): with
// none running they exit 69, a file left by a killed server is never signalled, and it does not stop the next start.
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed class QueueFlushTests
{
    [Fact]
    public async Task With_no_server_running_queue_flush_and_reload_exit_69()
    {
        using var dir = new TempDirectory();
        var config = dir.File("sluice.json");
        await File.WriteAllTextAsync(config, $$"""{ "DataDir": "{{dir.File("var")}}" }""");
        foreach (var (verb, missing) in new[] { (new[] { "queue", "flush" }, "sluice.pid"), (["reload"], "admin.sock") })
        {
            var (exit, stdout, stderr) = await SluiceProcess.RunAsync(dir.Path, "", [.. verb, "--config", config]);
            Assert.Equal(69, exit);
            Assert.Equal("", stdout);
            Assert.Equal($"{string.Join(' ', verb)}: no sluice serve is running for DataDir {dir.File("var")} (no {dir.File($"var/{missing}")})\n", stderr);
        }
    }

    [Fact]
    public async Task A_pid_file_left_by_a_killed_server_is_not_signalled_and_does_not_stop_the_next_start()
    {
        await using var sluice = await Instance.StartAsync();
        var pidFile = sluice.Dir.File("var/sluice.pid");
        var killed = sluice.Process.Pid;
        Assert.Equal($"{killed}\n", await File.ReadAllTextAsync(pidFile));
        sluice.Process.Kill();

        var (exit, _, stderr) = await sluice.RunVerbAsync("queue", "flush");
        Assert.Equal(69, exit);
        Assert.Contains($"{pidFile} is stale: pid {killed} is not a running sluice serve", stderr, StringComparison.Ordinal);

        await sluice.RestartAsync();
        (exit, var stdout, stderr) = await sluice.RunVerbAsync("queue", "flush");
        Assert.True(exit == 0, stderr);
        Assert.Equal($"queue flush: asked sluice (pid {sluice.Process.Pid}) to retry deferred mail now\n", stdout);
        await sluice.WaitForLogAsync("sigalrm: flushing 1 queues");

        Assert.Equal(0, await sluice.Process.StopAsync());
        Assert.False(File.Exists(pidFile), "a clean stop removes the pid file");
    }
}
