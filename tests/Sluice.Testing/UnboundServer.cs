// A real DNS server for delivery tests: unbound (Debian's package, installed by ./test.sh) on a free
// loopback port, answering from the records a test gives it. Every name under "test." that has no
// record is NXDOMAIN; names under a SERVFAIL zone are forwarded over TCP to port 1 on loopback, where
// nothing listens, so unbound answers SERVFAIL at once instead of after a timeout.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Sluice.Testing;

public sealed class UnboundServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly TempDirectory _dir;
    private readonly StringBuilder _log = new();

    private UnboundServer(Process process, TempDirectory dir, int port)
    {
        _process = process;
        _dir = dir;
        Port = port;
    }

    public int Port { get; }

    /// <summary>"127.0.0.1:port", the form of a Dns.Servers entry.</summary>
    public string Address => $"127.0.0.1:{Port}";

    /// <param name="records">Zone-file lines under "test.", e.g. "mx.test. 300 IN MX 10 a.mx.test.".</param>
    /// <param name="servfailZones">Zones whose every query gets SERVFAIL, e.g. "servfail.test".</param>
    public static async Task<UnboundServer> StartAsync(IEnumerable<string> records, IEnumerable<string> servfailZones)
    {
        var dir = new TempDirectory();
        // The free port is found by binding and letting go, so another process may take it first: try again.
        for (int attempt = 1; ; attempt++)
        {
            var port = FreeUdpPort();
            var config = dir.File("unbound.conf");
            await File.WriteAllTextAsync(config, Config(dir.Path, port, records, servfailZones));
            var process = new Process { StartInfo = new ProcessStartInfo(Executable, ["-d", "-c", config]) { RedirectStandardError = true, RedirectStandardOutput = true } };
            var server = new UnboundServer(process, dir, port);
            var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null) return;
                lock (server._log) server._log.AppendLine(e.Data);
                if (e.Data.Contains("start of service", StringComparison.Ordinal)) ready.TrySetResult();
            };
            process.Start();
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            var exited = process.WaitForExitAsync();
            if (await Task.WhenAny(ready.Task, exited, Task.Delay(TimeSpan.FromSeconds(30))) == ready.Task) return server;
            if (!exited.IsCompleted) process.Kill();
            string log;
            lock (server._log) log = server._log.ToString();
            process.Dispose();
            if (attempt == 5) throw new InvalidOperationException("unbound did not start:\n" + log);
        }
    }

    private static string Executable =>
        new[] { "/usr/sbin/unbound", "/usr/local/sbin/unbound" }.FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException("unbound is not installed: ./test.sh installs it (apt-get install unbound)");

    private static string Config(string directory, int port, IEnumerable<string> records, IEnumerable<string> servfailZones)
    {
        var c = new StringBuilder();
        c.AppendLine("server:");
        foreach (var line in new[]
        {
            "interface: 127.0.0.1", $"port: {port}", "do-daemonize: no", "chroot: \"\"", "username: \"\"", $"directory: \"{directory}\"",
            "pidfile: \"\"", "use-syslog: no", "logfile: \"\"", "verbosity: 1", "num-threads: 1", "module-config: \"iterator\"",
            "do-not-query-localhost: no", "msg-cache-size: 1m", "rrset-cache-size: 1m", "outgoing-range: 64", "num-queries-per-thread: 32",
            "local-zone: \"test.\" static",
        }) c.Append("  ").AppendLine(line);
        foreach (var r in records) c.Append("  local-data: '").Append(r).AppendLine("'");
        foreach (var zone in servfailZones) c.AppendLine($"  local-zone: \"{zone}.\" transparent");
        foreach (var zone in servfailZones)
            c.AppendLine("forward-zone:").AppendLine($"  name: \"{zone}.\"").AppendLine("  forward-addr: 127.0.0.1@1").AppendLine("  forward-tcp-upstream: yes");
        c.AppendLine("remote-control:").AppendLine("  control-enable: no");
        return c.ToString();
    }

    private static int FreeUdpPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        _dir.Dispose();
    }
}
