// A private Dovecot (Debian's dovecot-imapd, which ./test.sh installs) serving IMAP on a free loopback
// port over Sluice's Maildirs: its own config, run and state directories in a temp dir, no system
// service, the Maildir++ quota backend reading maildirsize. Started in the foreground and stopped by PID.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MailKit.Net.Imap;
using MailKit.Security;
using Sluice.Testing;

namespace Sluice.EndToEnd;

internal sealed class DovecotServer : IAsyncDisposable
{
    public const string Password = "secret";
    /// <summary>Dovecot refuses to run mail processes as root (uid 0); a root test run lends them Debian's "dovecot" user.</summary>
    private const string RootMailUser = "dovecot";

    private readonly TempDirectory _dir = new();
    private readonly string _mailRoot;
    private Process? _process;

    private DovecotServer(string mailRoot) => _mailRoot = mailRoot;

    public int Port { get; private set; }

    private static bool IsRoot => Environment.UserName == "root";

    /// <summary>Starts Dovecot with mail_location maildir:<paramref name="mailRoot"/>/%n, any user with <see cref="Password"/>.</summary>
    public static async Task<DovecotServer> StartAsync(string mailRoot)
    {
        var server = new DovecotServer(mailRoot);
        try
        {
            await server.StartAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private async Task StartAsync()
    {
        Port = LoopbackPort.Free();
        Directory.CreateDirectory(_mailRoot);
        var (uid, gid) = IsRoot ? (RootMailUser, RootMailUser) : (await RunAsync("id", "-un"), await RunAsync("id", "-gn"));
        var config = _dir.File("dovecot.conf");
        await File.WriteAllTextAsync(config, $$"""
            base_dir = {{_dir.File("run")}}
            state_dir = {{_dir.File("state")}}
            log_path = /dev/stderr
            protocols = imap
            listen = 127.0.0.1
            ssl = no
            disable_plaintext_auth = no
            auth_mechanisms = plain
            default_internal_user = {{(IsRoot ? "dovecot" : uid)}}
            default_internal_group = {{(IsRoot ? "dovecot" : gid)}}
            default_login_user = {{(IsRoot ? "dovenull" : uid)}}
            first_valid_uid = 1
            mail_location = maildir:{{_mailRoot}}/%n
            mail_plugins = quota
            protocol imap {
              mail_plugins = $mail_plugins imap_quota
            }
            passdb {
              driver = static
              args = password={{Password}}
            }
            userdb {
              driver = static
              args = uid={{uid}} gid={{gid}} home={{_dir.File("home")}}/%n
            }
            service imap-login {
              inet_listener imap {
                address = 127.0.0.1
                port = {{Port}}
              }
              inet_listener imaps {
                port = 0
              }
              chroot =
            }
            service anvil {
              chroot =
            }
            plugin {
              # No quota_rule: the limits are each Maildir's maildirsize, as Sluice writes it.
              quota = maildir:User quota
            }
            """);
        if (IsRoot) await RunAsync("chmod", "755", _dir.Path);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new List<string>();
        var process = new Process { StartInfo = new ProcessStartInfo("dovecot", ["-F", "-c", config]) { RedirectStandardError = true, UseShellExecute = false } };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (log) log.Add(e.Data);
            // The master logs this once its listeners are bound.
            if (e.Data.Contains("starting up", StringComparison.Ordinal)) started.TrySetResult();
        };
        // Not found here means Dovecot is not installed: ./test.sh installs dovecot-imapd.
        if (!File.Exists("/usr/sbin/dovecot") && !File.Exists("/usr/bin/dovecot")) throw new InvalidOperationException("dovecot is not installed: run ./test.sh, which installs dovecot-imapd");
        process.Start();
        _process = process;
        _process.BeginErrorReadLine();
        var exited = _process.WaitForExitAsync();
        if (await Task.WhenAny(started.Task, exited).WaitAsync(TimeSpan.FromSeconds(30)) == exited)
            throw new InvalidOperationException("dovecot exited at start: " + string.Join("\n", log));
    }

    /// <summary>
    /// Logs in as <paramref name="user"/>. Under root the Maildirs Sluice wrote are handed to the mail
    /// user first, so Dovecot may move new/ to cur/ and keep its indexes beside them.
    /// </summary>
    public async Task<ImapClient> ConnectAsync(string user)
    {
        if (IsRoot)
        {
            await RunAsync("chown", "-R", $"{RootMailUser}:{RootMailUser}", _mailRoot);
            for (var dir = Path.GetDirectoryName(_mailRoot); dir is not null && dir != Path.GetTempPath().TrimEnd('/'); dir = Path.GetDirectoryName(dir))
                await RunAsync("chmod", "o+x", dir);
        }
        var client = new ImapClient { Timeout = 30_000 };
        await client.ConnectAsync(IPAddress.Loopback.ToString(), Port, SecureSocketOptions.None);
        await client.AuthenticateAsync(user, Password);
        return client;
    }


    private static async Task<string> RunAsync(string file, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = await p.StandardOutput.ReadToEndAsync();
        var stderr = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: exit {p.ExitCode}: {stderr}");
        return stdout.Trim();
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        _dir.Dispose();
    }
}
