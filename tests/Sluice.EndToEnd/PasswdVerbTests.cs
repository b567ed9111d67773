// `sluice passwd` as an operator runs it: the built binary, a config file, the password on stdin;
// the users file it writes is then checked by the same store the SMTP listener uses.
using System.Runtime.Versioning;
using System.Text.Json;
using Sluice.Receive.Auth;
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed class PasswdVerbTests
{
    private static async Task<(TempDirectory Dir, string Config, string Users)> SetUpAsync()
    {
        var dir = new TempDirectory();
        var config = dir.File("sluice.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new { Hostname = "mx.sluice.test", DataDir = dir.File("var") }));
        return (dir, config, Path.Combine(dir.Path, "var", "smtp-users"));
    }

    [Fact]
    [UnsupportedOSPlatform("windows")] // file modes are POSIX
    public async Task Passwd_sets_a_password_the_user_store_accepts()
    {
        var (dir, config, users) = await SetUpAsync();
        using var _ = dir;

        var (exit, stdout, stderr) = await SluiceProcess.RunAsync(dir.Path, "s3cret pass\r\nignored second line\n", "passwd", "--config", config, "alice");

        Assert.True(exit == 0, stderr);
        Assert.Equal($"passwd: set alice in {users}", stdout.TrimEnd('\n'));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(users));
        // passwd run before the first start makes DataDir itself: private, as serve would.
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(users)!));
        var store = new SmtpUserStore(users);
        Assert.True(await store.VerifyAsync("alice", "s3cret pass"));
        Assert.False(await store.VerifyAsync("alice", "ignored second line"));
        Assert.False(await store.VerifyAsync("alice", "s3cret pass\r"));
    }

    [Fact]
    public async Task Passwd_delete_removes_the_user()
    {
        var (dir, config, users) = await SetUpAsync();
        using var _ = dir;
        Assert.Equal(0, (await SluiceProcess.RunAsync(dir.Path, "pw-a\n", "passwd", "--config", config, "alice")).Exit);
        Assert.Equal(0, (await SluiceProcess.RunAsync(dir.Path, "pw-b\n", "passwd", "--config", config, "bob")).Exit);

        var (exit, stdout, stderr) = await SluiceProcess.RunAsync(dir.Path, "", "passwd", "--config", config, "--delete", "alice");

        Assert.True(exit == 0, stderr);
        Assert.Equal($"passwd: removed alice from {users}", stdout.TrimEnd('\n'));
        var store = new SmtpUserStore(users);
        Assert.False(await store.VerifyAsync("alice", "pw-a"));
        Assert.True(await store.VerifyAsync("bob", "pw-b"));
        var again = await SluiceProcess.RunAsync(dir.Path, "", "passwd", "--config", config, "--delete", "alice");
        Assert.Equal(67, again.Exit);
    }

    [Theory]
    [InlineData("pw\n", "a:b")]
    [InlineData("pw\n", "two words")]
    [InlineData("\n", "alice")]
    [InlineData("", "alice")]
    public async Task Passwd_refuses_bad_names_and_empty_passwords_with_a_usage_error(string stdin, string user)
    {
        var (dir, config, users) = await SetUpAsync();
        using var _ = dir;

        var (exit, _, stderr) = await SluiceProcess.RunAsync(dir.Path, stdin, "passwd", "--config", config, user);

        Assert.Equal(64, exit);
        Assert.StartsWith("sluice: passwd: ", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(users));
    }

    [Fact]
    public async Task Passwd_with_a_bad_config_is_a_configuration_error()
    {
        var (dir, config, users) = await SetUpAsync();
        using var _ = dir;
        await File.WriteAllTextAsync(config, """{ "Smtp": { "TlsKey": "key.pem" } }""");

        var (exit, _, stderr) = await SluiceProcess.RunAsync(dir.Path, "pw\n", "passwd", "--config", config, "alice");

        Assert.Equal(78, exit);
        Assert.Contains("Smtp:TlsKey", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(users));
    }
}
