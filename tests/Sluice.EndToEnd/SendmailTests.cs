// sendmail's interface as real programs call it: bsd-mailx's mail(1) and swaks through a symlink named
// sendmail (mailx runs it as `sendmail -i -t -f ADDR`), -t -i -F on stdin, -bs SMTP on stdin/stdout,
// mailq and -q against a queue that defers, and the refusal (exit 64) of an option it cannot honour.
// Maildir files keep LF line endings, as maildir(5) stores them.
using System.Diagnostics;
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed class SendmailTests
{
    [Fact]
    public async Task Mailx_sends_through_a_sendmail_symlink_with_its_envelope_sender()
    {
        await using var sluice = await Instance.StartAsync();
        var bin = Links(sluice);
        // mailx runs /usr/sbin/sendmail whatever PATH says, unless its startup file names another.
        var mailrc = sluice.Dir.File("mailrc");
        await File.WriteAllTextAsync(mailrc, $"set sendmail={bin}/sendmail\n");
        var env = Environment(sluice, bin);
        env["MAILRC"] = mailrc;
        var mailx = await PrivatePeer.RootAsync("mailx.sh");
        env["LD_LIBRARY_PATH"] = Path.Combine(mailx, "usr/lib/x86_64-linux-gnu");
        var (exit, _, stderr) = await RunAsync(Path.Combine(mailx, "usr/bin/bsd-mailx"), ["-s", "via mailx", "-r", "sender@client.test", "erin@localhost"], env, "hello from mailx\n");
        Assert.True(exit == 0, stderr);
        await sluice.WaitForLogAsync("delivered to maildir erin/");
        var delivered = await File.ReadAllTextAsync(Assert.Single(sluice.MaildirFiles("erin")));
        Assert.StartsWith("Return-Path: <sender@client.test>\n", delivered, StringComparison.Ordinal);
        Assert.Contains("\nSubject: via mailx\n", delivered, StringComparison.Ordinal);
        Assert.Contains("\n\nhello from mailx\n", delivered, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sendmail_t_i_takes_recipients_from_headers_and_F_names_the_added_from()
    {
        await using var sluice = await Instance.StartAsync();
        var bin = Links(sluice);
        var input = "To: erin@localhost\nSubject: cron output\n\n.\nthe line above is a lone dot\n";
        var (exit, _, stderr) = await RunAsync($"{bin}/sendmail", ["-t", "-i", "-oem", "-odb", "-F", "Cron Daemon", "-fcron@client.test"],
            Environment(sluice, bin), input);
        Assert.True(exit == 0, stderr);
        await sluice.WaitForLogAsync("delivered to maildir erin/");
        var delivered = await File.ReadAllTextAsync(Assert.Single(sluice.MaildirFiles("erin")));
        Assert.StartsWith("Return-Path: <cron@client.test>\n", delivered, StringComparison.Ordinal);
        Assert.Contains("\nFrom: Cron Daemon <cron@client.test>\n", delivered, StringComparison.Ordinal);
        Assert.Contains("\n\n.\nthe line above is a lone dot\n", delivered, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bs_speaks_smtp_on_stdin_and_stdout_for_swaks()
    {
        await using var sluice = await Instance.StartAsync();
        var bin = Links(sluice);
        var (exit, output, stderr) = await RunAsync("swaks", ["--pipe", $"{bin}/sendmail -bs", "--from", "swaks@client.test", "--to", "erin@localhost",
            "--header", "Subject: via -bs", "--body", "piped body"], Environment(sluice, bin), "");
        Assert.True(exit == 0, output + stderr);
        Assert.Contains("<-  250 2.0.0 Ok: queued as ", output, StringComparison.Ordinal);
        await sluice.WaitForLogAsync("delivered to maildir erin/");
        var delivered = await File.ReadAllTextAsync(Assert.Single(sluice.MaildirFiles("erin")));
        Assert.StartsWith("Return-Path: <swaks@client.test>\n", delivered, StringComparison.Ordinal);
        Assert.Contains("\nSubject: via -bs\n", delivered, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bs_turns_bare_lf_lines_into_crlf_and_passes_replies_unchanged()
    {
        await using var sluice = await Instance.StartAsync();
        var env = Environment(sluice, Links(sluice));
        env["SLUICE_CONFIG"] = sluice.ConfigFile;
        var (exit, stdout, stderr) = await SluiceProcess.RunAsync(sluice.Dir.Path, "EHLO script.test\nQUIT\n", env, "sendmail", "-bs");
        Assert.True(exit == 0, stderr);
        Assert.StartsWith($"220 {Instance.Hostname} ", stdout, StringComparison.Ordinal);
        Assert.Contains($"\r\n250-{Instance.Hostname}", stdout, StringComparison.Ordinal);
        Assert.EndsWith("\r\n", stdout, StringComparison.Ordinal);
        Assert.Contains("\r\n221 ", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("500", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mailq_lists_the_queue_and_q_asks_for_a_retry()
    {
        await using var sluice = await Instance.StartAsync(c => c["Routes"] = new Dictionary<string, string> { ["*"] = "127.0.0.1:1" });
        var bin = Links(sluice);
        var env = Environment(sluice, bin);
        var (exit, _, stderr) = await RunAsync($"{bin}/sendmail", ["-v", "-oi", "-f", "me@client.test", "--", "you@remote.test"], env, "Subject: x\n\nx\n");
        Assert.True(exit == 0, stderr);
        var id = Assert.Single(stderr.Split('\n'), l => l.StartsWith("sluice: queued as ", StringComparison.Ordinal))["sluice: queued as ".Length..];
        await sluice.WaitForLogAsync("deferral: 451 4.4.1 127.0.0.1:1");

        var (listed, queue, listErr) = await RunAsync($"{bin}/mailq", [], env, "");
        Assert.True(listed == 0, listErr);
        var lines = queue.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith(id, lines[0], StringComparison.Ordinal);
        Assert.Contains("me@client.test", lines[0], StringComparison.Ordinal);
        Assert.Equal("-- 1 messages, 1 recipients pending", lines[1]);
        var (bp, same, _) = await RunAsync($"{bin}/sendmail", ["-bp"], env, "");
        Assert.Equal(0, bp);
        Assert.StartsWith(id, same, StringComparison.Ordinal);

        var (flushed, said, flushErr) = await RunAsync($"{bin}/sendmail", ["-q"], env, "");
        Assert.True(flushed == 0, flushErr);
        Assert.StartsWith($"sendmail -q: asked sluice (pid {sluice.Process.Pid}) to retry deferred mail now", said, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refused_recipient_is_exit_65_and_no_server_is_exit_75()
    {
        await using var sluice = await Instance.StartAsync(c => c["Mailboxes"] = new { Users = new Dictionary<string, object> { ["erin@localhost"] = new { } } });
        var bin = Links(sluice);
        var (refused, _, why) = await RunAsync($"{bin}/sendmail", ["-i", "mallory@localhost"], Environment(sluice, bin), "Subject: x\n\nx\n");
        Assert.Equal(65, refused);
        Assert.Contains("<mallory@localhost>: 550 5.1.1", why, StringComparison.Ordinal);

        var down = Environment(sluice, bin);
        down["SLUICE__Smtp__Listen__0"] = "127.0.0.1:1";
        var (tempfail, _, said) = await RunAsync($"{bin}/sendmail", ["-i", "erin@localhost"], down, "Subject: x\n\nx\n");
        Assert.Equal(75, tempfail);
        Assert.Contains("connect to 127.0.0.1:1 failed", said, StringComparison.Ordinal);
        var (bs, _, bsSaid) = await RunAsync($"{bin}/sendmail", ["-bs"], down, "QUIT\n");
        Assert.Equal(75, bs);
        Assert.Contains("connect to 127.0.0.1:1 failed", bsSaid, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-bd", "-bd: only -bm, -bs and -bp are supported")]
    [InlineData("-X", "-X: a sendmail option sluice does not support")]
    [InlineData("-q30m", "-q30m: only a plain -q (retry now) is supported")]
    [InlineData("-f", "-f: the option needs a value")]
    public async Task An_option_it_cannot_honour_is_exit_64_with_a_clear_message(string option, string message)
    {
        using var dir = new TempDirectory();
        var (exit, _, stderr) = await SluiceProcess.RunAsync(dir.Path, "", new Dictionary<string, string> { ["SLUICE_CONFIG"] = dir.File("none.json") },
            "sendmail", option);
        Assert.Equal(64, exit);
        Assert.Contains($"sendmail: {message}", stderr, StringComparison.Ordinal);
    }

    /// <summary>A directory with sendmail and mailq symlinks to ./sluice, as a package installs them.</summary>
    private static string Links(Instance sluice)
    {
        var bin = sluice.Dir.File("bin");
        Directory.CreateDirectory(bin);
        foreach (var name in new[] { "sendmail", "mailq" })
            File.CreateSymbolicLink(Path.Combine(bin, name), Path.Combine(SluiceProcess.RepositoryRoot, "sluice"));
        return bin;
    }

    /// <summary>The links first on PATH, the instance's config by SLUICE_CONFIG, its smtp listener's port (chosen at start) by override.</summary>
    private static Dictionary<string, string> Environment(Instance sluice, string bin) => new()
    {
        ["PATH"] = $"{bin}:{System.Environment.GetEnvironmentVariable("PATH")}",
        ["SLUICE_CONFIG"] = sluice.ConfigFile,
        ["SLUICE__Smtp__Listen__0"] = $"127.0.0.1:{sluice.Process.SmtpPort}",
    };

    private static Task<(int Exit, string Stdout, string Stderr)> RunAsync(string file, string[] args, Dictionary<string, string> env, string stdin)
    {
        var psi = new ProcessStartInfo(file);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        return SluiceProcess.RunAsync(psi, stdin);
    }
}
