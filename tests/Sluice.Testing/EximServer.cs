// A private Exim 4 (Debian's exim4-daemon-light, unpacked by tests/peers/exim.sh, never installed) on a
// free loopback port, as a real MTA nobody here wrote: its own config, spool and logs in a temp dir,
// every recipient delivered into one Maildir with CRLF line ends, 8BITMIME offered or not. It runs in
// the foreground (-bdf) under an unprivileged uid and is stopped by PID.
using System.Diagnostics;

namespace Sluice.Testing;

public sealed class EximServer : IAsyncDisposable
{
    /// <summary>Under root the daemon runs as this uid, which needs no account (nss_wrapper names it): Exim never delivers as root.</summary>
    private const int RootRunsAs = 64025;

    private readonly TempDirectory _dir;
    private readonly Process _process;

    private EximServer(Process process, int port, TempDirectory dir)
    {
        _process = process;
        Port = port;
        _dir = dir;
    }

    public int Port { get; }

    private string MailDirectory => _dir.File("mail");

    /// <summary>Exim's main log: what it received (&lt;=) and delivered (=&gt;), and why it refused what it refused.</summary>
    public string MainLog => File.Exists(_dir.File("log/mainlog")) ? File.ReadAllText(_dir.File("log/mainlog")) : "";

    /// <summary>The messages delivered so far, oldest first, exactly as Exim wrote them into the Maildir.</summary>
    public IReadOnlyList<byte[]> Messages =>
        [.. new DirectoryInfo(Path.Combine(MailDirectory, "new")).GetFiles().OrderBy(f => f.CreationTimeUtc).ThenBy(f => f.Name).Select(f => File.ReadAllBytes(f.FullName))];

    /// <param name="eightBitMime">Whether EHLO offers 8BITMIME (Exim's accept_8bitmime).</param>
    public static async Task<EximServer> StartAsync(bool eightBitMime)
    {
        var root = await PrivatePeer.RootAsync("exim.sh");
        // The free port is found by binding and letting go, so another process may take it first: try again.
        for (int attempt = 1; ; attempt++)
        {
            var port = LoopbackPort.Free();
            var dir = new TempDirectory();
            var process = await LaunchAsync(root, port, eightBitMime, dir);
            var server = new EximServer(process, port, dir);
            var exited = process.WaitForExitAsync();
            try
            {
                await UntilAsync(dir.File("log"), () => exited.IsCompleted || server.MainLog.Contains("daemon started", StringComparison.Ordinal),
                    TimeSpan.FromSeconds(30), exited);
            }
            catch (TimeoutException)
            {
                await server.DisposeAsync();
                throw new InvalidOperationException("exim did not start within 30s:\n" + server.MainLog);
            }
            if (!exited.IsCompleted) return server;
            var log = server.MainLog + await process.StandardError.ReadToEndAsync();
            await server.DisposeAsync();
            if (attempt == 5 || !log.Contains("Address already in use", StringComparison.Ordinal)) throw new InvalidOperationException("exim exited at start:\n" + log);
        }
    }

    /// <summary>Waits until <paramref name="count"/> messages have been delivered; the Maildir's changes are awaited, not polled.</summary>
    public async Task<IReadOnlyList<byte[]>> WaitForMessagesAsync(int count, TimeSpan timeout)
    {
        try
        {
            await UntilAsync(Path.Combine(MailDirectory, "new"), () => Messages.Count >= count, timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"exim delivered {Messages.Count} messages, expected {count} within {timeout}:\n{MainLog}");
        }
        return Messages;
    }

    private static async Task<Process> LaunchAsync(string root, int port, bool eightBitMime, TempDirectory dir)
    {
        var d = dir.Path;
        var bin = dir.File("bin");
        Directory.CreateDirectory(bin);
        // Copied out of the cache, which may be in root's home where the unprivileged uid cannot read.
        var libs = Path.Combine(root, "usr", "lib", "x86_64-linux-gnu");
        File.Copy(Path.Combine(root, "usr", "sbin", "exim4"), Path.Combine(bin, "exim4"));
        foreach (var lib in new[] { "libidn.so.12", "libnss_wrapper.so" }) File.Copy(Path.Combine(libs, lib), Path.Combine(bin, lib));
        foreach (var sub in new[] { "spool", "log", "mail/new", "mail/cur", "mail/tmp" }) Directory.CreateDirectory(Path.Combine(d, sub));
        var root0 = Environment.UserName == "root";
        var (uid, gid) = root0 ? (RootRunsAs, RootRunsAs) : (int.Parse(await IdAsync("-u")), int.Parse(await IdAsync("-g")));
        File.WriteAllText(dir.File("passwd"), $"root:x:0:0:root:/root:/bin/sh\nDebian-exim:x:{uid}:{gid}:exim:{d}:/bin/false\n");
        File.WriteAllText(dir.File("group"), $"root:x:0:\nDebian-exim:x:{gid}:\n");
        File.WriteAllText(dir.File("exim.conf"), $"""
            exim_path = {bin}/exim4
            keep_environment = LD_LIBRARY_PATH : LD_PRELOAD : NSS_WRAPPER_PASSWD : NSS_WRAPPER_GROUP
            primary_hostname = exim.test
            spool_directory = {d}/spool
            log_file_path = {d}/log/%slog
            pid_file_path = {d}/exim.pid
            local_interfaces = 127.0.0.1
            daemon_smtp_ports = {port}
            daemon_startup_retries = 0
            accept_8bitmime = {(eightBitMime ? "true" : "false")}
            tls_advertise_hosts =
            host_lookup =
            rfc1413_hosts =
            acl_smtp_rcpt = accept

            begin routers
            everyone:
              driver = accept
              transport = maildir

            begin transports
            maildir:
              driver = appendfile
              directory = {d}/mail
              maildir_format = true
              use_crlf = true
              user = Debian-exim

            """);
        var exim = new[] { $"{bin}/exim4", "-C", dir.File("exim.conf"), "-bdf", "-odf", "-oX", port.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (root0)
        {
            using var chown = Process.Start("chown", ["-R", $"{uid}:{gid}", d]);
            await chown.WaitForExitAsync();
        }
        var start = root0
            ? new ProcessStartInfo("setpriv", [$"--reuid={uid}", $"--regid={gid}", "--clear-groups", .. exim])
            : new ProcessStartInfo(exim[0], exim[1..]);
        start.RedirectStandardError = true;
        start.RedirectStandardOutput = true;
        start.Environment["LD_LIBRARY_PATH"] = bin;
        start.Environment["LD_PRELOAD"] = Path.Combine(bin, "libnss_wrapper.so");
        start.Environment["NSS_WRAPPER_PASSWD"] = dir.File("passwd");
        start.Environment["NSS_WRAPPER_GROUP"] = dir.File("group");
        return Process.Start(start)!;
    }

    private static async Task<string> IdAsync(string option)
    {
        using var id = Process.Start(new ProcessStartInfo("id", [option]) { RedirectStandardOutput = true })!;
        var output = await id.StandardOutput.ReadToEndAsync();
        await id.WaitForExitAsync();
        return output.Trim();
    }

    /// <summary>Returns once <paramref name="done"/> holds, checking it on each change in <paramref name="directory"/> (and when <paramref name="alsoWake"/> ends).</summary>
    private static async Task UntilAsync(string directory, Func<bool> done, TimeSpan timeout, Task? alsoWake = null)
    {
        using var changed = new SemaphoreSlim(0);
        using var watcher = new FileSystemWatcher(directory);
        FileSystemEventHandler poke = (_, _) => changed.Release();
        watcher.Created += poke;
        watcher.Changed += poke;
        watcher.Renamed += (_, _) => changed.Release();
        watcher.EnableRaisingEvents = true;
        _ = alsoWake?.ContinueWith(_ => changed.Release(), TaskScheduler.Default);
        var deadline = Stopwatch.StartNew();
        while (!done())
        {
            var left = timeout - deadline.Elapsed;
            if (left <= TimeSpan.Zero || !await changed.WaitAsync(left)) throw new TimeoutException();
        }
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
