// `sluice serve` as a separate process, built by ./sluice into .build/bin, for tests that need a
// real process: SIGKILL, restart, stdout log. Each listener's port is read from its log line.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Sluice.Testing;

public sealed partial class SluiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource<int> _port = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentDictionary<string, int> _rolePorts = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly List<(Func<string, bool> Match, TaskCompletionSource Done)> _waiters = [];

    private SluiceProcess(Process process) => _process = process;

    public ConcurrentQueue<string> Log { get; } = new();
    public int SmtpPort => _port.Task.IsCompleted ? _port.Task.Result : throw new InvalidOperationException("no smtp listener was logged");
    /// <summary>The first listener of the submission role (STARTTLS, then AUTH: port 587's job).</summary>
    public int SubmissionPort => PortOf("submission");
    /// <summary>The first listener of the submissions role (TLS from the first byte: port 465's job).</summary>
    public int SubmissionsPort => PortOf("submissions");
    public int Pid => _process.Id;

    public static string RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (System.IO.File.Exists(System.IO.Path.Combine(dir.FullName, "sluice")) && Directory.Exists(System.IO.Path.Combine(dir.FullName, "src")))
                    return dir.FullName;
            throw new InvalidOperationException("repository root (with ./sluice) not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>Runs `sluice ARGS` to completion and returns exit code, stdout and stderr.</summary>
    public static Task<(int Exit, string Stdout, string Stderr)> RunAsync(string workingDirectory, string stdin, params string[] args) =>
        RunAsync(workingDirectory, stdin, new Dictionary<string, string>(), args);

    public static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(string workingDirectory, string stdin, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var psi = StartInfo(workingDirectory, args);
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        return await RunAsync(psi, stdin);
    }

    /// <summary>Runs any program with <paramref name="stdin"/> as its input, and what it wrote and its exit code.</summary>
    public static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(ProcessStartInfo psi, string stdin)
    {
        psi.RedirectStandardInput = psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        using var p = Process.Start(psi)!;
        await p.StandardInput.WriteAsync(stdin);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        return (p.ExitCode, await stdout, await stderr);
    }

    /// <param name="serveArgs">More arguments for `sluice serve`, e.g. "--roles", "deliver".</param>
    public static Task<SluiceProcess> StartAsync(string workingDirectory, string configFile, params string[] serveArgs) =>
        StartAsync(workingDirectory, configFile, new Dictionary<string, string?>(), serveArgs);

    /// <param name="environment">Variables for the server process beside the test's own; null removes one.</param>
    public static Task<SluiceProcess> StartAsync(string workingDirectory, string configFile, IReadOnlyDictionary<string, string?> environment, params string[] serveArgs) =>
        StartAsync(workingDirectory, configFile, environment, null, serveArgs);

    /// <param name="openFilesLimit">Soft and hard RLIMIT_NOFILE for the server (set by prlimit(1), which then runs it); null: the test's own.</param>
    public static Task<SluiceProcess> StartAsync(string workingDirectory, string configFile, IReadOnlyDictionary<string, string?> environment,
        int? openFilesLimit, params string[] serveArgs) =>
        StartUnderAsync(workingDirectory, configFile, environment, openFilesLimit is int limit ? ["prlimit", $"--nofile={limit}:{limit}"] : [], serveArgs);

    /// <param name="launcher">
    /// A command that sets something up and then execs the server in the same process (its PID stays the server's):
    /// e.g. ["nohup"], ["prlimit", "--nofile=N:N"]; empty: the server is started directly.
    /// </param>
    public static async Task<SluiceProcess> StartUnderAsync(string workingDirectory, string configFile, IReadOnlyDictionary<string, string?> environment,
        IReadOnlyList<string> launcher, params string[] serveArgs)
    {
        var p = new Process { StartInfo = StartInfo(workingDirectory, ["serve", "--config", configFile, .. serveArgs]) };
        if (launcher.Count > 0)
        {
            p.StartInfo.ArgumentList.Insert(0, p.StartInfo.FileName);
            for (int i = launcher.Count - 1; i >= 1; i--) p.StartInfo.ArgumentList.Insert(0, launcher[i]);
            p.StartInfo.FileName = launcher[0];
        }
        foreach (var (k, v) in environment)
            if (v is null) p.StartInfo.Environment.Remove(k);
            else p.StartInfo.Environment[k] = v;
        var sp = new SluiceProcess(p);
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) sp.OnLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) sp.OnLine("stderr: " + e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        p.StandardInput.Close();
        var exited = p.WaitForExitAsync();
        // Every listener is logged before the "started" line, so all ports are known once it is seen.
        var first = await Task.WhenAny(sp._started.Task, exited).WaitAsync(TimeSpan.FromSeconds(60));
        if (first == exited) throw new InvalidOperationException("sluice serve exited at start:\n" + string.Join("\n", sp.Log));
        return sp;
    }

    private int PortOf(string role) =>
        _rolePorts.TryGetValue(role, out var port) ? port : throw new InvalidOperationException($"no {role} listener was logged:\n" + string.Join("\n", Log));

    private static ProcessStartInfo StartInfo(string workingDirectory, IEnumerable<string> args)
    {
        var dll = System.IO.Path.Combine(RepositoryRoot, ".build", "bin", "sluice.dll");
        if (!System.IO.File.Exists(dll)) throw new InvalidOperationException($"{dll} is missing: run ./sluice once (./test.sh does) to build it");
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    private void OnLine(string line)
    {
        Log.Enqueue(line);
        var m = ListeningLine().Match(line);
        if (m.Success)
        {
            var port = int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
            var role = m.Groups[1].Success ? m.Groups[1].Value : "smtp";
            _rolePorts.TryAdd(role, port);
            if (role == "smtp") _port.TrySetResult(port);
        }
        if (StartedLine().IsMatch(line)) _started.TrySetResult();
        lock (_lock)
            foreach (var w in _waiters.Where(w => w.Match(line)).ToList())
            {
                w.Done.TrySetResult();
                _waiters.Remove(w);
            }
    }

    /// <summary>Completes when a log line matching <paramref name="match"/> appears (or has appeared).</summary>
    public Task WaitForLogAsync(Func<string, bool> match, TimeSpan timeout)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (Log.Any(match)) return Task.CompletedTask;
            _waiters.Add((match, done));
        }
        return done.Task.WaitAsync(timeout);
    }

    public void Kill()
    {
        _process.Kill(entireProcessTree: true); // SIGKILL: no chance to flush anything
        _process.WaitForExit();
    }

    /// <summary>SIGTERM, then wait for the orderly exit.</summary>
    public async Task<int> StopAsync()
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) await kill.WaitForExitAsync();
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        _process.WaitForExit(); // drains the output readers
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    /// <summary>"smtp: listening on 127.0.0.1:2525" (the smtp role) or "smtp: listening for submission on 127.0.0.1:587".</summary>
    [GeneratedRegex(@"smtp: listening (?:for (\w+) )?on .*:(\d+)$")]
    private static partial Regex ListeningLine();

    [GeneratedRegex(@"sluice: started ")]
    private static partial Regex StartedLine();
}
