// One Sluice instance under test: a temp data dir, a config routing every remote domain to a
// sink, and the `sluice serve` process; with helpers for its TLS certificate and AUTH users.
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Sluice.Testing;

namespace Sluice.EndToEnd;

internal sealed class Instance : IAsyncDisposable
{
    public const string Hostname = "mx.sluice.test";
    /// <summary>An smtp, a submission and a submissions listener, in that order, each on a free port.</summary>
    public static readonly string[] AllRoles = ["127.0.0.1:0", "127.0.0.1:0 submission", "127.0.0.1:0 submissions"];

    public TempDirectory Dir { get; } = new();
    public SmtpSink Sink { get; } = new();
    public SluiceProcess Process { get; private set; } = null!;
    private string[] _serveArgs = [];
    private string[] _launcher = [];
    public string ConfigFile => Dir.File("sluice.json");
    /// <summary>The configuration as written; change it and <see cref="WriteConfigAsync"/> to test a reload.</summary>
    public Dictionary<string, object> Config { get; private set; } = [];
    public string Maildirs => Dir.File("var/maildirs");
    /// <summary>The self-signed certificate the server makes at first start (no Smtp.TlsCertificate configured).</summary>
    public string CertificateFile => Dir.File("var/tls/cert.pem");

    /// <param name="serveArgs">More arguments for `sluice serve`, kept for restarts.</param>
    public static Task<Instance> StartAsync(Action<Dictionary<string, object>>? adjust = null, params string[] serveArgs) =>
        StartAsync(null, adjust, serveArgs);

    /// <param name="openFilesLimit">The server's open-files limit, soft and hard (it cannot raise it); null: the test's own.</param>
    public static Task<Instance> StartAsync(int? openFilesLimit, Action<Dictionary<string, object>>? adjust = null, params string[] serveArgs) =>
        StartUnderAsync(openFilesLimit is int limit ? ["prlimit", $"--nofile={limit}:{limit}"] : [], adjust, serveArgs);

    /// <param name="launcher">What runs the server, kept for restarts: e.g. ["nohup"] (see <see cref="SluiceProcess.StartUnderAsync"/>).</param>
    public static async Task<Instance> StartUnderAsync(string[] launcher, Action<Dictionary<string, object>>? adjust = null, params string[] serveArgs)
    {
        var instance = new Instance { _launcher = launcher };
        var config = new Dictionary<string, object>
        {
            ["Hostname"] = Hostname,
            ["DataDir"] = instance.Dir.File("var"),
            ["Smtp"] = new Dictionary<string, object> { ["Listen"] = new[] { "127.0.0.1:0" }, ["LocalDomains"] = new[] { "localhost", "local.test" } },
            ["Channels"] = new object[]
            {
                new { Name = "local", Transport = "maildir", Domains = new[] { "localhost", "local.test" }, Concurrency = 8 },
                new { Name = "remote", Transport = "smtp", Concurrency = 20, DestinationConcurrency = 10 },
            },
            ["Routes"] = new Dictionary<string, string> { ["*"] = $"127.0.0.1:{instance.Sink.Port}" },
            ["Retry"] = new { Schedule = new[] { "1s" }, MaxQueueLifetime = "1h" },
        };
        adjust?.Invoke(config);
        instance.Config = config;
        instance._serveArgs = serveArgs;
        await instance.WriteConfigAsync();
        await instance.RestartAsync();
        return instance;
    }

    /// <summary>The Smtp section of a config being adjusted, to set single keys in it.</summary>
    public static Dictionary<string, object> Smtp(Dictionary<string, object> config) => (Dictionary<string, object>)config["Smtp"];

    public Task WriteConfigAsync() => File.WriteAllTextAsync(ConfigFile, JsonSerializer.Serialize(Config));

    /// <summary>Runs an operator verb against this instance: `sluice ARGS --config FILE`.</summary>
    public Task<(int Exit, string Stdout, string Stderr)> RunVerbAsync(params string[] args) =>
        SluiceProcess.RunAsync(Dir.Path, "", [.. args, "--config", ConfigFile]);

    public async Task RestartAsync() =>
        Process = await SluiceProcess.StartUnderAsync(Dir.Path, ConfigFile, new Dictionary<string, string?>(), _launcher, _serveArgs);

    public Task WaitForLogAsync(string fragment, int seconds = 30) =>
        Process.WaitForLogAsync(l => l.Contains(fragment, StringComparison.Ordinal), TimeSpan.FromSeconds(seconds));

    public string[] MaildirFiles(string user) =>
        Directory.Exists(Path.Combine(Maildirs, user, "new")) ? Directory.GetFiles(Path.Combine(Maildirs, user, "new")) : [];

    /// <summary>The server's certificate as a client that trusts only it would pin it.</summary>
    public X509Certificate2 LoadCertificate() => X509Certificate2.CreateFromPem(File.ReadAllText(CertificateFile));

    /// <summary>Adds an AUTH user as an operator does: `sluice passwd --config F USER`, the password on stdin.</summary>
    public async Task AddUserAsync(string user, string password)
    {
        var (exit, _, stderr) = await SluiceProcess.RunAsync(Dir.Path, password + "\n", "passwd", "--config", ConfigFile, user);
        Assert.True(exit == 0, $"sluice passwd exited {exit}: {stderr}");
    }

    /// <summary>Waits until a message for the local <paramref name="user"/> is in its Maildir, and returns its text.</summary>
    public async Task<string> WaitForMaildirAsync(string user, int seconds = 30)
    {
        await Process.WaitForLogAsync(l => l.Contains($"success: 250 2.0.0 delivered to maildir {user}/new/", StringComparison.Ordinal), TimeSpan.FromSeconds(seconds));
        return await File.ReadAllTextAsync(Assert.Single(MaildirFiles(user)));
    }

    public async ValueTask DisposeAsync()
    {
        await Process.DisposeAsync();
        await Sink.DisposeAsync();
        Dir.Dispose();
    }
}
