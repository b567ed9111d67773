// A private PostgreSQL for tests: Debian's server binaries (installed by ./test.sh), a cluster made
// with initdb in a temp directory, started by pg_ctl on a free loopback port. PostgreSQL refuses to
// run as root, so as root it runs as the "postgres" user the Debian package creates (runuser).
// One instance serves a whole test assembly (PostgresCollection); each test takes its own database.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Sluice.Testing;

public sealed class PostgresServer : Xunit.IAsyncLifetime
{
    private const string ServiceUser = "postgres";
    private readonly TempDirectory _dir = new();
    private int _databases;

    public int Port { get; private set; }
    private string DataDir => _dir.File("data");
    private string LogFile => _dir.File("postgres.log");

    /// <summary>Connection string of the server's maintenance database, as the test superuser.</summary>
    public string AdminConnectionString => ConnectionString("postgres");

    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={Port};Username=sluice;Database={database};Pooling=true;Timeout=10";

    public async Task InitializeAsync()
    {
        if (Environment.IsPrivilegedProcess) await RunAsync("chown", [ServiceUser, _dir.Path]);
        // --no-sync: the cluster is thrown away after the run; the server itself still fsyncs every commit.
        await RunToolAsync("initdb", ["-D", DataDir, "-A", "trust", "-U", "sluice", "-E", "UTF8", "--locale=C", "--no-sync"]);
        for (int attempt = 1; ; attempt++)
        {
            Port = LoopbackPort.Free();
            try
            {
                await StartAsync();
                return;
            }
            catch (InvalidOperationException) when (attempt < 5)
            {
                // The free port was taken by someone else between the probe and the bind: try another.
            }
        }
    }

    /// <summary>Starts the server again (after <see cref="StopAsync"/>) on the same port and data.</summary>
    public async Task StartAsync()
    {
        await RunToolAsync("pg_ctl",
            ["-D", DataDir, "-l", LogFile, "-w", "-t", "60", "-o", $"-p {Port} -k {_dir.Path} -c listen_addresses=127.0.0.1 -c max_connections=200", "start"]);
        NpgsqlConnection.ClearAllPools(); // the tests' own pooled connections died with a stopped server
    }

    /// <summary>Stops the server; immediate is a crash as far as the data is concerned (no checkpoint).</summary>
    public Task StopAsync(bool immediate = false) =>
        RunToolAsync("pg_ctl", ["-D", DataDir, "-w", "-m", immediate ? "immediate" : "fast", "stop"]);

    /// <summary>A new, empty database for one test; its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"test{Interlocked.Increment(ref _databases)}";
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await create.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    /// <summary>The first column of the first row of <paramref name="sql"/>, run on its own connection; default for NULL.</summary>
    public static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync();
        return value is DBNull or null ? default! : (T)value;
    }

    public async Task DisposeAsync()
    {
        try { await StopAsync(); }
        catch (InvalidOperationException) { } // not running: nothing to stop
        NpgsqlConnection.ClearAllPools();
        _dir.Dispose();
    }

    /// <summary>The newest Debian server binaries (/usr/lib/postgresql/VERSION/bin).</summary>
    private static string BinDir
    {
        get
        {
            const string root = "/usr/lib/postgresql";
            var dir = Directory.Exists(root)
                ? Directory.GetDirectories(root).Where(d => File.Exists(Path.Combine(d, "bin", "pg_ctl")))
                    .OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var v) ? v : 0).FirstOrDefault()
                : null;
            return dir is null
                ? throw new InvalidOperationException("PostgreSQL is not installed: ./test.sh installs it (apt-get install postgresql)")
                : Path.Combine(dir, "bin");
        }
    }

    private Task RunToolAsync(string tool, string[] args)
    {
        var path = Path.Combine(BinDir, tool);
        return Environment.IsPrivilegedProcess ? RunAsync("runuser", ["-u", ServiceUser, "--", path, .. args]) : RunAsync(path, args);
    }

    private async Task RunAsync(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _dir.Path };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        if (p.ExitCode == 0) return;
        var log = File.Exists(LogFile) ? await File.ReadAllTextAsync(LogFile) : "";
        throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {p.ExitCode}:\n{await stdout}{await stderr}{log}");
    }

}
