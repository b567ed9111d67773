// One Sluice instance under test: a temp data dir, a config routing every remote domain to a
// sink, and the `sluice serve` process.
using System.Text.Json;
using Sluice.Testing;

namespace Sluice.EndToEnd;

internal sealed class Instance : IAsyncDisposable
{
    public TempDirectory Dir { get; } = new();
    public SmtpSink Sink { get; } = new();
    public SluiceProcess Process { get; private set; } = null!;
    public string ConfigFile => Dir.File("sluice.json");
    public string Maildirs => Dir.File("var/maildirs");

    public static async Task<Instance> StartAsync(Action<Dictionary<string, object>>? adjust = null)
    {
        var instance = new Instance();
        var config = new Dictionary<string, object>
        {
            ["Hostname"] = "mx.sluice.test",
            ["DataDir"] = instance.Dir.File("var"),
            ["Smtp"] = new { Listen = new[] { "127.0.0.1:0" }, LocalDomains = new[] { "localhost", "local.test" } },
            ["Channels"] = new object[]
            {
                new { Name = "local", Transport = "maildir", Domains = new[] { "localhost", "local.test" }, Concurrency = 8 },
                new { Name = "remote", Transport = "smtp", Concurrency = 20, DestinationConcurrency = 10 },
            },
            ["Routes"] = new Dictionary<string, string> { ["*"] = $"127.0.0.1:{instance.Sink.Port}" },
            ["Retry"] = new { Schedule = new[] { "1s" }, MaxQueueLifetime = "1h" },
        };
        adjust?.Invoke(config);
        await File.WriteAllTextAsync(instance.ConfigFile, JsonSerializer.Serialize(config));
        await instance.RestartAsync();
        return instance;
    }

    public async Task RestartAsync() => Process = await SluiceProcess.StartAsync(Dir.Path, ConfigFile);

    public Task WaitForLogAsync(string fragment, int seconds = 30) =>
        Process.WaitForLogAsync(l => l.Contains(fragment, StringComparison.Ordinal), TimeSpan.FromSeconds(seconds));

    public string[] MaildirFiles(string user) =>
        Directory.Exists(Path.Combine(Maildirs, user, "new")) ? Directory.GetFiles(Path.Combine(Maildirs, user, "new")) : [];

    public async ValueTask DisposeAsync()
    {
        await Process.DisposeAsync();
        await Sink.DisposeAsync();
        Dir.Dispose();
    }
}
