// Nothing Sluice writes is readable by other local users unless the operator says so (issue 20): the
// modes and owners of everything under DataDir and the Maildir root after real deliveries, secrets that
// others can read refused at start, and Mailboxes.Mode/Owner/Group and Http.SocketGroup honoured.
using System.Diagnostics;
using System.Text.Json;
using Sluice.Testing;

namespace Sluice.EndToEnd;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class PrivateDataTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>One file or directory as find(1) reports it: octal mode, owner, group, type (f, d, s) and path.</summary>
    private sealed record Entry(string Mode, string Owner, string Group, char Type, string Path);

    private static async Task<List<Entry>> TreeAsync(string root)
    {
        var psi = new ProcessStartInfo("find", [root, "-printf", "%m %u %g %y %p\\n"]) { RedirectStandardOutput = true };
        using var find = Process.Start(psi)!;
        var output = await find.StandardOutput.ReadToEndAsync();
        await find.WaitForExitAsync();
        Assert.Equal(0, find.ExitCode);
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', 5)).Select(f => new Entry(f[0], f[1], f[2], f[3][0], f[4]))];
    }

    private static Dictionary<string, object> LocalUser(string? mode = null, string? owner = null, string? group = null)
    {
        var m = new Dictionary<string, object> { ["Users"] = new Dictionary<string, object> { ["alice@local.test"] = new { Quota = "10MB" } } };
        if (mode is not null) m["Mode"] = mode;
        if (owner is not null) m["Owner"] = owner;
        if (group is not null) m["Group"] = group;
        return m;
    }

    [Fact]
    public async Task After_deliveries_nothing_under_DataDir_or_the_Maildirs_has_group_or_other_bits_and_the_admin_socket_is_0600()
    {
        await using var sluice = await Instance.StartAsync(c =>
        {
            c["Mailboxes"] = LocalUser();
            c["Log"] = new { File = Path.Combine((string)c["DataDir"], "log", "delivery.log") };
        });
        await sluice.AddUserAsync("submitter", "a long enough password");
        await TestMail.SendAsync(sluice.Process.SmtpPort, "alice@local.test", "bob@remote.test");
        await sluice.WaitForMaildirAsync("alice");
        await sluice.Sink.WaitForCountAsync(1, Wait);

        var tree = await TreeAsync(sluice.Dir.File("var"));
        // What must be there for the walk to mean something: the spool, the Maildir with its quota file, the log, the keys.
        foreach (var part in new[] { "/queue", "/maildirs/alice/new/", "/maildirs/alice/maildirsize", "/log/delivery.log", "/tls/key.pem", "/smtp-users", "/sluice.pid", "/delivery-numbers" })
            Assert.Contains(tree, e => e.Path.Contains(part, StringComparison.Ordinal));
        Assert.All(tree.Where(e => e.Type == 'd'), e => Assert.True(e.Mode == "700", $"{e.Path} is a directory with mode {e.Mode}, not 700"));
        Assert.All(tree.Where(e => e.Type == 'f'), e => Assert.True(e.Mode == "600", $"{e.Path} is a file with mode {e.Mode}, not 600"));
        var socket = Assert.Single(tree, e => e.Type == 's');
        Assert.Equal((Path.Combine(sluice.Dir.File("var"), "admin.sock"), "600"), (socket.Path, socket.Mode));
    }

    [Fact]
    public async Task A_users_file_TLS_key_or_DKIM_key_that_others_can_read_is_refused_at_start_naming_key_file_and_reason()
    {
        using var dir = new TempDirectory();
        string Secret(string name, UnixFileMode mode)
        {
            var path = dir.File(name);
            File.WriteAllText(path, "-----BEGIN PRIVATE KEY-----\n");
            File.SetUnixFileMode(path, mode);
            return path;
        }
        const UnixFileMode Owner = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        var users = Secret("smtp-users", Owner | UnixFileMode.GroupRead);
        var tlsKey = Secret("tls.key", Owner | UnixFileMode.OtherRead);
        var dkim = Secret("dkim.key", Owner | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var config = dir.File("sluice.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new
        {
            DataDir = dir.File("var"),
            Smtp = new { UsersFile = users, TlsCertificate = dir.File("tls.crt"), TlsKey = tlsKey },
            Delivery = new { Dkim = new Dictionary<string, object> { ["local.test"] = new { Selector = "s1", KeyFile = dkim } } },
        }));

        var (exit, _, stderr) = await SluiceProcess.RunAsync(dir.Path, "", "serve", "--config", config);

        Assert.Equal(78, exit);
        Assert.Contains($"key 'Smtp:UsersFile': \"{users}\" is readable or writable by its group (mode 0640): a secret must be private to its owner; chmod 600 it", stderr, StringComparison.Ordinal);
        Assert.Contains($"key 'Smtp:TlsKey': \"{tlsKey}\" is readable or writable by other users (mode 0604)", stderr, StringComparison.Ordinal);
        Assert.Contains($"key 'Delivery:Dkim:local.test:KeyFile': \"{dkim}\" is readable or writable by other users (mode 0644)", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir.File("var")), "nothing is written before the configuration is accepted");
    }

    [Fact]
    public async Task A_users_file_made_readable_by_others_while_running_is_refused_by_a_reload()
    {
        await using var sluice = await Instance.StartAsync();
        await sluice.AddUserAsync("submitter", "a long enough password");
        var users = sluice.Dir.File("var/smtp-users");
        File.SetUnixFileMode(users, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var (exit, _, stderr) = await sluice.RunVerbAsync("reload");

        Assert.Equal(78, exit);
        Assert.Contains($"key 'Smtp:UsersFile': \"{users}\" is readable or writable by other users (mode 0644)", stderr, StringComparison.Ordinal);
        Assert.Contains("reload: the server was not asked; a running server keeps its configuration", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mailboxes_Mode_Owner_and_Group_give_the_Maildirs_to_an_IMAP_user_and_Http_SocketGroup_opens_the_admin_socket_to_its_group()
    {
        if (!Sluice.Core.Privileges.ProcessIdentity.IsRoot)
        {
            // Not root: chown(2) to another user is impossible, and the server must say so at start rather than fail each delivery.
            using var dir = new TempDirectory();
            var config = dir.File("sluice.json");
            await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new { DataDir = dir.File("var"), Mailboxes = LocalUser("0750", "nobody", "nogroup") }));
            var (exit, _, stderr) = await SluiceProcess.RunAsync(dir.Path, "", "serve", "--config", config);
            Assert.Equal(78, exit);
            Assert.Contains("key 'Mailboxes:Owner': giving Maildirs to another user or group needs root", stderr, StringComparison.Ordinal);
            return;
        }
        await using var sluice = await Instance.StartAsync(c =>
        {
            c["Mailboxes"] = LocalUser("0750", "nobody", "nogroup");
            c["Http"] = new { SocketGroup = "nogroup" };
        });
        await TestMail.SendAsync(sluice.Process.SmtpPort, "alice@local.test");
        await sluice.WaitForMaildirAsync("alice");

        var maildirs = await TreeAsync(sluice.Maildirs);
        foreach (var part in new[] { "/alice/new/", "/alice/maildirsize" }) Assert.Contains(maildirs, e => e.Path.Contains(part, StringComparison.Ordinal));
        Assert.All(maildirs, e => Assert.True((e.Owner, e.Group, e.Mode) == ("nobody", "nogroup", e.Type == 'd' ? "750" : "640"),
            $"{e.Path} ({e.Type}) is {e.Owner}:{e.Group} mode {e.Mode}"));
        var socket = Assert.Single(await TreeAsync(sluice.Dir.File("var/admin.sock")));
        Assert.Equal(("root", "nogroup", "660"), (socket.Owner, socket.Group, socket.Mode));
        // The rest of DataDir stays the server's own.
        var spool = await TreeAsync(sluice.Dir.File("var/queue"));
        Assert.All(spool, e => Assert.True(e.Owner == "root" && e.Mode is "700" or "600", $"{e.Path} is {e.Owner} mode {e.Mode}"));
    }

    [Fact]
    public async Task An_unknown_Mailboxes_Owner_or_Group_an_unknown_SocketGroup_or_a_bad_Mode_is_refused_at_start()
    {
        using var dir = new TempDirectory();
        var config = dir.File("sluice.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new
        {
            DataDir = dir.File("var"),
            Mailboxes = LocalUser("0644", "no-such-user-sluice", "no-such-group-sluice"),
            Http = new { SocketGroup = "no-such-group-sluice" },
        }));

        var (exit, _, stderr) = await SluiceProcess.RunAsync(dir.Path, "", "serve", "--config", config);

        Assert.Equal(78, exit);
        Assert.Contains("key 'Mailboxes:Mode': \"0644\" is not an octal mode from 0700 to 0777", stderr, StringComparison.Ordinal);
        Assert.Contains("key 'Mailboxes:Owner': there is no user \"no-such-user-sluice\" on this host", stderr, StringComparison.Ordinal);
        Assert.Contains("key 'Mailboxes:Group': there is no group \"no-such-group-sluice\" on this host", stderr, StringComparison.Ordinal);
        Assert.Contains("key 'Http:SocketGroup': there is no group \"no-such-group-sluice\" on this host", stderr, StringComparison.Ordinal);
    }
}
