// `serve` runs socket completions on the runtime's socket engine threads, half the cores' worth,
// unless the operator's environment says otherwise (src/Sluice/SocketEngineThreads.cs).
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed class SocketEngineTests
{
    private const string Inline = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
    private const string Count = "DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT";

    // DOTNET_PROCESSOR_COUNT=8: 8 cores as the runtime sees them, so 4 engine threads, where the runtime alone
    // would start 1 (one per 30 cores): the count shows the setting reached the engine. An operator's count is kept.
    [Theory]
    [InlineData("DOTNET_PROCESSOR_COUNT", "8", 4)]
    [InlineData(Count, "3", 3)]
    public async Task Serve_runs_completions_inline_on_half_the_cores_unless_told_how_many(string variable, string value, int threads)
    {
        using var dir = new TempDirectory();
        await using var sluice = await StartAsync(dir, new() { [variable] = value });
        Assert.Contains(sluice.Log, l => l.EndsWith($"sockets: completions run on the socket engine's own threads ({Count}={threads})", StringComparison.Ordinal));
        Assert.Equal(threads, EngineThreads(sluice.Pid));
    }

    [Fact]
    public async Task The_operator_can_send_completions_to_the_thread_pool()
    {
        using var dir = new TempDirectory();
        await using var sluice = await StartAsync(dir, new() { [Inline] = "0" });
        Assert.Contains(sluice.Log, l => l.EndsWith($"sockets: completions go to the thread pool ({Inline}=0)", StringComparison.Ordinal));
    }

    private static async Task<SluiceProcess> StartAsync(TempDirectory dir, Dictionary<string, string?> environment)
    {
        var config = dir.File("sluice.json");
        await File.WriteAllTextAsync(config, $$"""{ "DataDir": "{{dir.File("var")}}", "Smtp": { "Listen": ["127.0.0.1:0"] } }""");
        // The test runner's own settings must not leak into the server under test.
        environment.TryAdd(Inline, null);
        environment.TryAdd(Count, null);
        return await SluiceProcess.StartAsync(dir.Path, config, environment);
    }

    /// <summary>The runtime names each socket engine's epoll thread ".NET Sockets"; the listener has made them by "started".</summary>
    private static int EngineThreads(int pid) =>
        Directory.GetDirectories($"/proc/{pid}/task").Count(t => File.ReadAllText(Path.Combine(t, "comm")).TrimEnd('\n') == ".NET Sockets");
}
