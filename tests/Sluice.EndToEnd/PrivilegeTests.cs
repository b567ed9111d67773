// `User`: the real binary started as root binds a port below 1024, then runs as that user before it
// reads a byte from a client, so what it spools and delivers is that user's; with no User, root is warned about.
using System.Net;
using System.Net.Sockets;
using Sluice.Testing;

namespace Sluice.EndToEnd;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class PrivilegeTests
{
    private const string Nobody = "nobody";
    private const int NobodyId = 65534;

    [Fact]
    public async Task Started_as_root_with_User_it_binds_a_low_port_then_runs_as_that_user_and_what_it_writes_is_theirs()
    {
        if (ProcessUids("self")[1] != 0)
        {
            // Not root: no low port and no drop to test, but User must then be refused, not ignored.
            await Unprivileged_with_a_User_other_than_itself_serve_refuses_with_exit_78_naming_the_key();
            return;
        }
        var port = FreeLowPort();
        await using var sluice = await Instance.StartAsync(c =>
        {
            // nobody must reach DataDir inside the test's own (0700) directory.
            File.SetUnixFileMode(Path.GetDirectoryName((string)c["DataDir"])!, (UnixFileMode)0b111_101_101);
            c["User"] = Nobody;
            // Opened as root, before the drop, inside the DataDir that does not exist yet.
            c["Log"] = new { File = Path.Combine((string)c["DataDir"], "log", "delivery.log") };
            Instance.Smtp(c)["Listen"] = new[] { $"127.0.0.1:{port}" };
        });
        Assert.Equal(port, sluice.Process.SmtpPort);
        Assert.Contains(sluice.Process.Log, l => l.Contains($"privileges: running as {Nobody} (uid {NobodyId}, gid {NobodyId})", StringComparison.Ordinal));
        Assert.Equal([NobodyId, NobodyId, NobodyId, NobodyId], ProcessUids(sluice.Process.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal([NobodyId, NobodyId, NobodyId, NobodyId], ProcessIds(sluice.Process.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "Gid:"));
        // setuid(2) itself changes one thread; glibc's wrapper changes them all, the runtime's many threads included.
        var threads = Directory.GetDirectories($"/proc/{sluice.Process.Pid}/task");
        Assert.True(threads.Length > 1, $"{threads.Length} thread");
        var threadUids = threads.Select(t => ThreadUids($"{sluice.Process.Pid}/task/{Path.GetFileName(t)}")).OfType<int[]>().ToList();
        Assert.NotEmpty(threadUids);
        Assert.All(threadUids, uids => Assert.Equal([NobodyId, NobodyId, NobodyId, NobodyId], uids));

        await TestMail.SendAsync(port, "alice@localhost");
        await sluice.WaitForMaildirAsync("alice");
        var dataDir = (string)sluice.Config["DataDir"];
        var written = await RunAsync("find", dataDir, "-printf", "%u %p\n");
        Assert.Contains($"{Nobody} {Path.Combine(sluice.Maildirs, "alice", "new")}/", written, StringComparison.Ordinal);
        Assert.Contains($"{Nobody} {Path.Combine(dataDir, "queue")}", written, StringComparison.Ordinal);
        var log = Path.Combine(dataDir, "log");
        Assert.Contains($"root {log}/delivery.log", written, StringComparison.Ordinal);
        Assert.Contains("privileges: running as nobody", await File.ReadAllTextAsync(Path.Combine(log, "delivery.log")), StringComparison.Ordinal);
        // Everything but the log, which root opened, is the user's, DataDir first.
        Assert.All(written.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.EndsWith(log, StringComparison.Ordinal) && !l.Contains(log + "/", StringComparison.Ordinal)),
            line => Assert.StartsWith($"{Nobody} ", line, StringComparison.Ordinal));
        Assert.StartsWith($"{Nobody} {dataDir}\n", written, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Started_unprivileged_with_CAP_NET_BIND_SERVICE_it_binds_a_low_port_with_no_root_at_all()
    {
        if (ProcessUids("self")[1] != 0)
        {
            // Not root, and so (here) without the capability: the highest privileged port is refused, and serve says which.
            // (FreeLowPort binds, which needs the very privilege this process lacks.)
            var start = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_unprivileged_port_start").Trim(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(start > 1, $"ip_unprivileged_port_start is {start}: no port needs a privilege on this host");
            var low = start - 1;
            using var dir = new TempDirectory();
            var (exit, stderr) = await ServeAsync(dir, new { }, $"127.0.0.1:{low}");
            Assert.True(exit == 69, $"exit {exit}, stderr:\n{stderr}");
            Assert.Contains($"cannot listen on 127.0.0.1:{low}", stderr, StringComparison.Ordinal);
            return;
        }
        var port = FreeLowPort();
        // What systemd's User= with AmbientCapabilities=CAP_NET_BIND_SERVICE does, by setpriv(1).
        string[] asNobody = ["setpriv", "--reuid", Nobody, "--regid", "nogroup", "--clear-groups",
            "--inh-caps", "+net_bind_service", "--ambient-caps", "+net_bind_service", "--"];
        await using var sluice = await Instance.StartUnderAsync(asNobody, c =>
        {
            var dataDir = (string)c["DataDir"];
            File.SetUnixFileMode(Path.GetDirectoryName(dataDir)!, (UnixFileMode)0b111_101_101);
            Directory.CreateDirectory(dataDir);
            File.SetUnixFileMode(dataDir, (UnixFileMode)0b111_000_000);
            RunAsync("chown", $"{Nobody}:nogroup", dataDir).GetAwaiter().GetResult();
            Instance.Smtp(c)["Listen"] = new[] { $"127.0.0.1:{port}" };
        });
        Assert.Equal(port, sluice.Process.SmtpPort);
        Assert.Contains(sluice.Process.Log, l => l.Contains($"privileges: running as {Nobody} (uid {NobodyId}, gid {NobodyId})", StringComparison.Ordinal));
        Assert.DoesNotContain(sluice.Process.Log, l => l.Contains("running as root", StringComparison.Ordinal));
        Assert.Equal([NobodyId, NobodyId, NobodyId, NobodyId], ProcessUids(sluice.Process.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        await TestMail.SendAsync(port, "alice@localhost");
        await sluice.WaitForMaildirAsync("alice");
    }

    [Fact]
    public async Task Without_User_a_server_started_as_root_warns_and_an_unprivileged_one_says_whom_it_runs_as()
    {
        await using var sluice = await Instance.StartAsync();
        var uid = ProcessUids("self")[1];
        var expected = uid == 0 ? "warning: privileges: running as root (uid 0) with no User configured" : $"privileges: running as {Environment.UserName} (uid {uid}";
        Assert.Contains(sluice.Process.Log, l => l.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_unknown_User_stops_serve_with_exit_78_naming_the_key()
    {
        using var dir = new TempDirectory();
        var (exit, stderr) = await ServeAsync(dir, new { User = "no-such-sluice-user" });
        Assert.True(exit == 78, $"exit {exit}, stderr:\n{stderr}");
        Assert.Contains("key 'User': no user \"no-such-sluice-user\" in the password database", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_Group_stops_serve_with_exit_78_naming_the_key()
    {
        using var dir = new TempDirectory();
        var (exit, stderr) = await ServeAsync(dir, new { User = Nobody, Group = "no-such-sluice-group" });
        Assert.True(exit == 78, $"exit {exit}, stderr:\n{stderr}");
        Assert.Contains("key 'Group': no group \"no-such-sluice-group\" in the group database", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_DataDir_the_User_cannot_write_in_stops_serve_with_exit_78_saying_what_to_chown()
    {
        if (ProcessUids("self")[1] != 0)
        {
            await Unprivileged_with_a_User_other_than_itself_serve_refuses_with_exit_78_naming_the_key();
            return;
        }
        using var dir = new TempDirectory();
        File.SetUnixFileMode(dir.Path, (UnixFileMode)0b111_101_101);
        Directory.CreateDirectory(dir.File("var")); // root's, 0755: nobody may not write in it
        var (exit, stderr) = await ServeAsync(dir, new { User = Nobody });
        Assert.True(exit == 78, $"exit {exit}, stderr:\n{stderr}");
        Assert.Contains($"key 'DataDir': {dir.File("var")} is not writable by {Nobody} (uid {NobodyId}), whom User makes the server: chown -R {Nobody} {dir.File("var")}",
            stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unprivileged_with_a_User_other_than_itself_serve_refuses_with_exit_78_naming_the_key()
    {
        using var dir = new TempDirectory();
        string[] launcher = [];
        if (ProcessUids("self")[1] == 0)
        {
            // Root here: run the server as nobody (setpriv, util-linux) and ask it to become root's own user.
            File.SetUnixFileMode(dir.Path, (UnixFileMode)0b111_101_101);
            launcher = ["setpriv", "--reuid", Nobody, "--regid", "nogroup", "--clear-groups", "--"];
        }
        var user = launcher.Length > 0 ? "root" : Nobody;
        var config = dir.File("sluice.json");
        await File.WriteAllTextAsync(config, System.Text.Json.JsonSerializer.Serialize(new { Hostname = Instance.Hostname, DataDir = dir.File("var"), User = user,
            Smtp = new { Listen = new[] { "127.0.0.1:0" } } }));
        var sluiceDll = Path.Combine(SluiceProcess.RepositoryRoot, ".build", "bin", "sluice.dll");
        string[] command = [.. launcher, "dotnet", sluiceDll, "serve", "--config", config];
        var (exit, output) = await ClientInteropTests.RunAsync(command[0], command[1..]);
        Assert.True(exit == 78, $"exit {exit}:\n{output}");
        Assert.Contains("key 'User': sluice runs as uid", output, StringComparison.Ordinal);
        Assert.Contains($"not root, so it cannot become {user}", output, StringComparison.Ordinal);
    }

    private static async Task<(int Exit, string Stderr)> ServeAsync(TempDirectory dir, object config, string listen = "127.0.0.1:0")
    {
        var file = dir.File("sluice.json");
        var json = System.Text.Json.JsonSerializer.SerializeToNode(config)!.AsObject();
        json["Hostname"] = Instance.Hostname;
        json["DataDir"] = dir.File("var");
        json["Smtp"] = new System.Text.Json.Nodes.JsonObject { ["Listen"] = new System.Text.Json.Nodes.JsonArray(listen) };
        await File.WriteAllTextAsync(file, json.ToJsonString());
        var (exit, _, stderr) = await SluiceProcess.RunAsync(dir.Path, "", "serve", "--config", file);
        return (exit, stderr);
    }

    /// <summary>A port below 1024 free on 127.0.0.1 now, from 1000 down (only root, or CAP_NET_BIND_SERVICE, binds one).</summary>
    private static int FreeLowPort()
    {
        for (var port = 1000; port > 512; port--)
        {
            try
            {
                using var probe = new TcpListener(IPAddress.Loopback, port);
                probe.Start();
                return port;
            }
            catch (SocketException)
            {
            }
        }
        throw new InvalidOperationException("no free port between 513 and 1000 on 127.0.0.1");
    }

    /// <summary>Real, effective, saved and filesystem uids of a process, from /proc/PID/status.</summary>
    private static int[] ProcessUids(string pid) => ProcessIds(pid, "Uid:");

    /// <summary>A thread's uids; null when it ended since it was listed (the thread pool retires idle threads).</summary>
    private static int[]? ThreadUids(string task)
    {
        try
        {
            return ProcessUids(task);
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static int[] ProcessIds(string pid, string field) =>
        [.. File.ReadLines($"/proc/{pid}/status").Single(l => l.StartsWith(field, StringComparison.Ordinal))[field.Length..]
            .Split('\t', StringSplitOptions.RemoveEmptyEntries).Select(n => int.Parse(n, System.Globalization.CultureInfo.InvariantCulture))];

    private static async Task<string> RunAsync(params string[] command)
    {
        var (exit, output) = await ClientInteropTests.RunAsync(command[0], command[1..]);
        Assert.True(exit == 0, $"{string.Join(' ', command)} exited {exit}:\n{output}");
        return output;
    }
}
