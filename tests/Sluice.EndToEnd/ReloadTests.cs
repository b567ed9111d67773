// SIGHUP (and `sluice reload`) against the real process: routes and limits change without a restart,
// a bad file keeps the running configuration, and keys that need a restart are named.
using System.Text.RegularExpressions;
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed partial class ReloadTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_route_added_by_reload_and_a_queue_flush_deliver_mail_deferred_for_want_of_a_route()
    {
        // No route: MX lookup, which the loopback DNS server answers with SERVFAIL, so the mail waits.
        await using var dns = await UnboundServer.StartAsync([], ["remote.test"]);
        await using var sluice = await Instance.StartAsync(c =>
        {
            c["Routes"] = new Dictionary<string, string>();
            c["Dns"] = new { Servers = new[] { dns.Address } };
            c["Retry"] = new { Schedule = new[] { "1h" }, MaxQueueLifetime = "1d" };
        });
        await TestMail.SendAsync(sluice.Process.SmtpPort, "u@remote.test");
        await sluice.WaitForLogAsync("deferral: 451 4.4.3 DNS MX lookup of remote.test failed: ServerFailure");

        sluice.Config["Routes"] = new Dictionary<string, string> { ["remote.test"] = $"127.0.0.1:{sluice.Sink.Port}" };
        await sluice.WriteConfigAsync();
        var (exit, stdout, stderr) = await sluice.RunVerbAsync("reload");
        Assert.True(exit == 0, stderr);
        Assert.Equal("reload: configuration reloaded (2 channels, 1 routes)\n", stdout);
        await sluice.WaitForLogAsync("reload: configuration reloaded (2 channels, 1 routes)");
        Assert.Empty(sluice.Sink.Messages); // the next retry is an hour away

        (exit, stdout, stderr) = await sluice.RunVerbAsync("queue", "flush");
        Assert.True(exit == 0, stderr);
        Assert.Equal($"queue flush: asked sluice (pid {sluice.Process.Pid}) to retry deferred mail now\n", stdout);
        await sluice.WaitForLogAsync("sigalrm: flushing 1 queues");
        await sluice.Sink.WaitForCountAsync(1, Wait);
        Assert.Equal("u@remote.test", Assert.Single(Assert.Single(sluice.Sink.Messages).Recipients));
    }

    [Fact]
    public async Task A_DestinationConcurrency_tightened_by_reload_holds_from_the_next_connection()
    {
        // One queue, so one todo stage: a local probe sent after the remote batch is split after all of it.
        await using var sluice = await Instance.StartAsync(c => c["Queue"] = new { Count = 1 });
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inFlight = new SessionGauge();
        sluice.Sink.BeforeDataReply = async _ =>
        {
            var (gauge, gate) = (Volatile.Read(ref inFlight), Volatile.Read(ref hold));
            gauge.Enter();
            try { await gate.Task; }
            finally { gauge.Leave(); }
        };

        // Before: DestinationConcurrency 10, so the first burst gets the whole slow-start window of 5.
        await TestMail.SendAsync(sluice.Process.SmtpPort, [.. Enumerable.Range(0, 5).Select(i => $"before{i}@remote.test")]);
        await inFlight.WaitForAsync(5, Wait);
        hold.SetResult();
        await sluice.WaitForLogAsync("remote 0/20");

        sluice.Config["Channels"] = new object[]
        {
            new { Name = "local", Transport = "maildir", Domains = new[] { "localhost", "local.test" }, Concurrency = 8 },
            new { Name = "remote", Transport = "smtp", Concurrency = 20, DestinationConcurrency = 2 },
        };
        await sluice.WriteConfigAsync();
        Volatile.Write(ref hold, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        Volatile.Write(ref inFlight, new SessionGauge());
        await Signal(sluice, "HUP");
        await sluice.WaitForLogAsync("sighup: configuration reloaded (2 channels, 1 routes)");
        var reloadedAt = sluice.Process.Log.Count;

        await TestMail.SendAsync(sluice.Process.SmtpPort, [.. Enumerable.Range(0, 12).Select(i => $"after{i}@remote.test")]);
        await TestMail.SendAsync(sluice.Process.SmtpPort, "probe@localhost");
        await sluice.WaitForMaildirAsync("probe");
        await inFlight.WaitForAsync(2, Wait);
        // Every remote job was offered a slot before the probe was split; none got past the new limit.
        Assert.All(RemoteInUse(sluice.Process.Log.Skip(reloadedAt)), n => Assert.InRange(n, 0, 2));
        hold.SetResult();
        await sluice.Sink.WaitForCountAsync(17, Wait);
        Assert.Equal(2, inFlight.Max);
        Assert.All(RemoteInUse(sluice.Process.Log.Skip(reloadedAt)), n => Assert.InRange(n, 0, 2));
    }

    [Fact]
    public async Task A_bad_file_on_SIGHUP_is_refused_with_its_key_and_the_running_configuration_stays()
    {
        await using var sluice = await Instance.StartAsync();
        sluice.Config["Channels"] = new object[]
        {
            new { Name = "local", Transport = "maildir", Domains = new[] { "localhost" } },
            new { Name = "remote", Transport = "smtp", DestinationConcurrency = 0 },
        };
        sluice.Config["Routes"] = new Dictionary<string, string> { ["*"] = "127.0.0.1:1" };
        await sluice.WriteConfigAsync();

        // `sluice reload` checks the file first and does not signal a server with a file that cannot load.
        var (exit, _, stderr) = await sluice.RunVerbAsync("reload");
        Assert.Equal(78, exit);
        Assert.Contains("key 'Channels:1:DestinationConcurrency': must be at least 1", stderr, StringComparison.Ordinal);
        Assert.Contains("reload: the server was not asked; a running server keeps its configuration", stderr, StringComparison.Ordinal);

        await Signal(sluice, "HUP");
        await sluice.WaitForLogAsync($"sighup: reload refused, keeping the running configuration: {sluice.ConfigFile}: key 'Channels:1:DestinationConcurrency': must be at least 1");
        Assert.DoesNotContain(sluice.Process.Log, l => l.Contains("configuration reloaded", StringComparison.Ordinal));
        // The old route to the sink still holds (the refused file would send to port 1).
        await TestMail.SendAsync(sluice.Process.SmtpPort, "still@remote.test");
        await sluice.Sink.WaitForCountAsync(1, Wait);
    }

    [Fact]
    public async Task A_local_domain_added_by_reload_is_accepted_by_the_next_session()
    {
        await using var sluice = await Instance.StartAsync(c => Instance.Smtp(c)["RelayNetworks"] = Array.Empty<string>());
        await using (var before = await SmtpWire.OpenAsync(sluice.Process.SmtpPort))
        {
            Assert.StartsWith("250", await before.CommandAsync("EHLO client.test"));
            Assert.StartsWith("250", await before.CommandAsync("MAIL FROM:<a@client.test>"));
            Assert.Equal("554 5.7.1 <x@new.test>: Relay access denied", await before.CommandAsync("RCPT TO:<x@new.test>"));
        }
        Instance.Smtp(sluice.Config)["LocalDomains"] = new[] { "localhost", "local.test", "new.test" };
        await sluice.WriteConfigAsync();
        var (exit, stdout, stderr) = await sluice.RunVerbAsync("reload");
        Assert.True(exit == 0, stderr);
        Assert.Equal("reload: configuration reloaded (2 channels, 1 routes)\n", stdout); // no key waits for a restart
        Assert.DoesNotContain(sluice.Process.Log, l => l.Contains("Smtp.LocalDomains changed", StringComparison.Ordinal));
        await using var after = await SmtpWire.OpenAsync(sluice.Process.SmtpPort);
        Assert.StartsWith("250", await after.CommandAsync("EHLO client.test"));
        Assert.StartsWith("250", await after.CommandAsync("MAIL FROM:<a@client.test>"));
        Assert.Equal("250 2.1.5 Ok", await after.CommandAsync("RCPT TO:<x@new.test>"));
    }

    [Fact]
    public async Task Under_nohup_sluice_reload_confirms_and_a_new_local_domain_is_in_force_and_SIGHUP_still_reloads()
    {
        // nohup starts the server with SIGHUP ignored (SIG_IGN), as many init scripts do; it execs, so the PID is the server's.
        await using var sluice = await Instance.StartUnderAsync(["nohup"], c => Instance.Smtp(c)["RelayNetworks"] = Array.Empty<string>());
        Assert.Contains(sluice.Process.Log, l => l.EndsWith("signals: SIGHUP was ignored at start (nohup?); it is handled now: it re-reads the configuration", StringComparison.Ordinal));
        Assert.Equal("554 5.7.1 <x@new.test>: Relay access denied", await RcptAsync(sluice, "x@new.test"));

        Instance.Smtp(sluice.Config)["LocalDomains"] = new[] { "localhost", "local.test", "new.test" };
        await sluice.WriteConfigAsync();
        var (exit, stdout, stderr) = await sluice.RunVerbAsync("reload");
        Assert.True(exit == 0, stderr);
        Assert.Equal("reload: configuration reloaded (2 channels, 1 routes)\n", stdout);
        // The verb returns once the server has taken the file: the next session sees it, nothing to wait for.
        Assert.Equal("250 2.1.5 Ok", await RcptAsync(sluice, "x@new.test"));

        // An operator's own `kill -HUP` works too, although the signal was ignored at start.
        Instance.Smtp(sluice.Config)["LocalDomains"] = new[] { "localhost", "local.test", "new.test", "newer.test" };
        await sluice.WriteConfigAsync();
        await Signal(sluice, "HUP");
        await sluice.WaitForLogAsync("sighup: configuration reloaded (2 channels, 1 routes)");
        Assert.Equal("250 2.1.5 Ok", await RcptAsync(sluice, "x@newer.test"));
    }

    [Fact]
    public async Task A_file_the_server_cannot_load_makes_sluice_reload_fail_with_key_and_reason_and_the_old_configuration_stays()
    {
        // The server's environment (as a unit file's Environment= would) caps Queue.Max; the verb's has no such cap,
        // so only the server finds the new file wrong, and `reload` must report the server's verdict.
        await using var sluice = await Instance.StartUnderAsync(["env", "SLUICE__Queue__Max=2"], c =>
        {
            c["Queue"] = new { Count = 1 };
            Instance.Smtp(c)["RelayNetworks"] = Array.Empty<string>();
        });
        sluice.Config["Queue"] = new { Count = 3 };
        Instance.Smtp(sluice.Config)["LocalDomains"] = new[] { "localhost", "local.test", "new.test" };
        await sluice.WriteConfigAsync();

        var (exit, stdout, stderr) = await sluice.RunVerbAsync("reload");
        Assert.Equal(78, exit);
        Assert.Equal("", stdout);
        Assert.Matches(@"^reload: refused, the server keeps its running configuration: .*key 'Queue:Max': must be at least Queue:Count \(3\)\n$", stderr);
        Assert.Contains(sluice.Process.Log, l => l.Contains("reload: reload refused, keeping the running configuration: ", StringComparison.Ordinal)
            && l.Contains("key 'Queue:Max'", StringComparison.Ordinal));
        Assert.DoesNotContain(sluice.Process.Log, l => l.Contains("configuration reloaded", StringComparison.Ordinal));
        Assert.Equal("554 5.7.1 <x@new.test>: Relay access denied", await RcptAsync(sluice, "x@new.test"));

        // Once the file is right, the same verb applies it.
        sluice.Config["Queue"] = new { Count = 2 };
        await sluice.WriteConfigAsync();
        (exit, _, stderr) = await sluice.RunVerbAsync("reload");
        Assert.True(exit == 0, stderr);
        Assert.Equal("250 2.1.5 Ok", await RcptAsync(sluice, "x@new.test"));
    }

    /// <summary>The reply to RCPT in a new session from outside the relay networks.</summary>
    private static async Task<string> RcptAsync(Instance sluice, string recipient)
    {
        await using var smtp = await SmtpWire.OpenAsync(sluice.Process.SmtpPort);
        Assert.StartsWith("250", await smtp.CommandAsync("EHLO client.test"));
        Assert.StartsWith("250", await smtp.CommandAsync("MAIL FROM:<a@client.test>"));
        return await smtp.CommandAsync($"RCPT TO:<{recipient}>");
    }

    [Fact]
    public async Task A_changed_listen_address_is_named_as_waiting_for_a_restart()
    {
        await using var sluice = await Instance.StartAsync();
        Instance.Smtp(sluice.Config)["Listen"] = new[] { "127.0.0.1:0", "127.0.0.1:0 submission" };
        await sluice.WriteConfigAsync();
        var (exit, stdout, stderr) = await sluice.RunVerbAsync("reload");
        Assert.True(exit == 0, stderr);
        Assert.Equal("reload: Smtp.Listen changed; it takes effect at restart\nreload: configuration reloaded (2 channels, 1 routes)\n", stdout);
        Assert.Contains(sluice.Process.Log, l => l.EndsWith("reload: Smtp.Listen changed; it takes effect at restart", StringComparison.Ordinal));
        // Still serving on the address it started with.
        await TestMail.SendAsync(sluice.Process.SmtpPort, "x@remote.test");
        await sluice.Sink.WaitForCountAsync(1, Wait);
    }

    private static async Task Signal(Instance sluice, string signal)
    {
        using var kill = System.Diagnostics.Process.Start("kill", [$"-{signal}", sluice.Process.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        Assert.Equal(0, kill.ExitCode);
    }

    /// <summary>The remote channel's slots in use, from each "status: queue1 local 0/8 remote 2/20" line.</summary>
    private static IEnumerable<int> RemoteInUse(IEnumerable<string> log) =>
        log.Select(l => RemoteStatus().Match(l)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));

    [GeneratedRegex(@"status: queue\d+ .*\bremote (\d+)/")]
    private static partial Regex RemoteStatus();
}
