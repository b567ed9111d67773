// The SMTP AUTH users file: bcrypt hashes checked against real files, edits that keep the other
// lines, a store that notices rewrites, and names the file format cannot hold refused.
using System.Diagnostics;
using System.Runtime.Versioning;
using Sluice.Receive.Auth;
using Sluice.Testing;

namespace Sluice.Receive.Tests;

public sealed class SmtpUserStoreTests
{
    private const int Fast = 4; // the lowest bcrypt cost keeps these tests quick

    [Fact]
    public async Task A_set_password_verifies_and_others_do_not()
    {
        using var dir = new TempDirectory();
        var path = dir.File("smtp-users");
        SmtpUserStore.SetPassword(path, "alice", "correct horse", Fast);
        var store = new SmtpUserStore(path);

        Assert.True(await store.VerifyAsync("alice", "correct horse"));
        Assert.False(await store.VerifyAsync("alice", "correct horse "));
        Assert.False(await store.VerifyAsync("alice", ""));
        Assert.False(await store.VerifyAsync("bob", "correct horse"));
    }

    [Fact]
    public async Task User_names_compare_case_sensitively()
    {
        using var dir = new TempDirectory();
        var path = dir.File("smtp-users");
        SmtpUserStore.SetPassword(path, "alice", "pw", Fast);
        var store = new SmtpUserStore(path);

        Assert.False(await store.VerifyAsync("Alice", "pw"));
        Assert.False(await store.VerifyAsync("ALICE", "pw"));
        Assert.True(await store.VerifyAsync("alice", "pw"));
    }

    [Fact]
    public async Task A_missing_file_means_no_users()
    {
        using var dir = new TempDirectory();
        var store = new SmtpUserStore(dir.File("absent"));

        Assert.False(await store.VerifyAsync("alice", "pw"));
        Assert.False(File.Exists(dir.File("absent")));
    }

    [Fact]
    public async Task An_unknown_user_still_costs_a_bcrypt_verification()
    {
        using var dir = new TempDirectory();
        var store = new SmtpUserStore(dir.File("absent"));
        await store.VerifyAsync("warm-up", "pw");

        var clock = Stopwatch.StartNew();
        Assert.False(await store.VerifyAsync("nobody", "pw"));

        // A dictionary miss takes microseconds; bcrypt at cost 11 takes tens of milliseconds at least.
        Assert.True(clock.ElapsedMilliseconds >= 10, $"unknown user answered in {clock.ElapsedMilliseconds}ms");
    }

    [Fact]
    [UnsupportedOSPlatform("windows")] // file modes are POSIX
    public void The_file_is_owner_only_and_holds_name_colon_bcrypt_hash()
    {
        using var dir = new TempDirectory();
        var path = dir.File("smtp-users");

        SmtpUserStore.SetPassword(path, "alice", "pw", Fast);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        var line = Assert.Single(File.ReadAllLines(path));
        Assert.Matches(@"^alice:\$2[aby]\$04\$[./A-Za-z0-9]{53}$", line);
        Assert.Equal(["smtp-users"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName)); // no temp file left
    }

    [Fact]
    public async Task Setting_a_password_keeps_comments_blank_lines_and_other_users_in_place()
    {
        using var dir = new TempDirectory();
        var path = dir.File("smtp-users");
        var bobHash = BCrypt.Net.BCrypt.HashPassword("bob-pw", Fast);
        await File.WriteAllTextAsync(path, $"# relay users\n\nalice:$2a$04$xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nbob:{bobHash}\n");

        SmtpUserStore.SetPassword(path, "alice", "new", Fast);
        SmtpUserStore.SetPassword(path, "carol", "carol-pw", Fast);

        var lines = await File.ReadAllLinesAsync(path);
        Assert.Equal(5, lines.Length);
        Assert.Equal("# relay users", lines[0]);
        Assert.Equal("", lines[1]);
        Assert.StartsWith("alice:$2", lines[2], StringComparison.Ordinal);
        Assert.Equal($"bob:{bobHash}", lines[3]);
        Assert.StartsWith("carol:$2", lines[4], StringComparison.Ordinal);
        var store = new SmtpUserStore(path);
        Assert.True(await store.VerifyAsync("alice", "new"));
        Assert.True(await store.VerifyAsync("bob", "bob-pw"));
        Assert.True(await store.VerifyAsync("carol", "carol-pw"));
    }

    [Fact]
    public async Task Remove_deletes_only_that_user_and_reports_whether_it_was_there()
    {
        using var dir = new TempDirectory();
        var path = dir.File("smtp-users");
        SmtpUserStore.SetPassword(path, "alice", "a", Fast);
        SmtpUserStore.SetPassword(path, "bob", "b", Fast);

        Assert.True(SmtpUserStore.Remove(path, "alice"));
        Assert.False(SmtpUserStore.Remove(path, "alice"));
        Assert.False(SmtpUserStore.Remove(dir.File("absent"), "alice"));

        Assert.StartsWith("bob:", Assert.Single(await File.ReadAllLinesAsync(path)), StringComparison.Ordinal);
        var store = new SmtpUserStore(path);
        Assert.False(await store.VerifyAsync("alice", "a"));
        Assert.True(await store.VerifyAsync("bob", "b"));
        Assert.False(File.Exists(dir.File("absent")));
    }

    [Fact]
    public async Task A_running_store_sees_a_changed_password_without_restarting()
    {
        using var dir = new TempDirectory();
        var path = dir.File("smtp-users");
        SmtpUserStore.SetPassword(path, "alice", "old", Fast);
        var store = new SmtpUserStore(path);
        Assert.True(await store.VerifyAsync("alice", "old"));

        // Same name, same hash length: only the contents (and timestamps) differ.
        SmtpUserStore.SetPassword(path, "alice", "new", Fast);

        Assert.True(await store.VerifyAsync("alice", "new"));
        Assert.False(await store.VerifyAsync("alice", "old"));

        SmtpUserStore.Remove(path, "alice");
        Assert.False(await store.VerifyAsync("alice", "new"));
    }

    [Fact]
    public async Task An_unchanged_file_is_read_once_and_a_changed_one_again()
    {
        using var dir = new TempDirectory();
        var path = dir.File("smtp-users");
        SmtpUserStore.SetPassword(path, "alice", "pw", Fast);
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddHours(-1)); // well outside the racy window
        var store = new SmtpUserStore(path);

        Assert.True(await store.VerifyAsync("alice", "pw"));
        Assert.True(await store.VerifyAsync("alice", "pw"));
        Assert.False(await store.VerifyAsync("bob", "pw"));
        Assert.Equal(1, store.Loads);

        SmtpUserStore.SetPassword(path, "bob", "pw", Fast);
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(-30));
        Assert.True(await store.VerifyAsync("bob", "pw"));
        Assert.Equal(2, store.Loads);
    }

    [Fact]
    public async Task Malformed_lines_are_skipped_and_logged_while_good_ones_work()
    {
        using var dir = new TempDirectory();
        var path = dir.File("smtp-users");
        var hash = BCrypt.Net.BCrypt.HashPassword("pw", Fast);
        await File.WriteAllTextAsync(path, $"no colon here\nbroken:not-a-bcrypt-hash\n  # indented comment\nalice:{hash}\r\n");
        var log = new List<string>();
        var store = new SmtpUserStore(path, log.Add);

        Assert.True(await store.VerifyAsync("alice", "pw"));
        Assert.False(await store.VerifyAsync("broken", "not-a-bcrypt-hash"));
        Assert.False(await store.VerifyAsync("no colon here", ""));
        Assert.Contains(log, l => l.Contains($"{path}:1:", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a:b")]
    [InlineData("a b")]
    [InlineData("a\tb")]
    [InlineData("a\nb")]
    [InlineData("a\rb")]
    [InlineData("a\0b")]
    [InlineData("a\u007fb")]
    [InlineData("#alice")]
    public void Names_the_file_cannot_hold_are_refused(string name)
    {
        using var dir = new TempDirectory();
        var path = dir.File("smtp-users");

        var e = Assert.Throws<ArgumentException>(() => SmtpUserStore.SetPassword(path, name, "pw", Fast));

        Assert.Contains("user name", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => SmtpUserStore.Remove(path, name));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task Names_are_limited_to_255_bytes_of_utf8()
    {
        using var dir = new TempDirectory();
        var path = dir.File("smtp-users");

        SmtpUserStore.SetPassword(path, new string('a', 255), "pw", Fast);
        var e = Assert.Throws<ArgumentException>(() => SmtpUserStore.SetPassword(path, new string('a', 256), "pw", Fast));
        Assert.Contains("255", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => SmtpUserStore.SetPassword(path, new string('é', 128), "pw", Fast)); // 256 bytes

        SmtpUserStore.SetPassword(path, "jörg", "pw", Fast);
        Assert.True(await new SmtpUserStore(path).VerifyAsync("jörg", "pw"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("two\nlines")]
    [InlineData("nul\0inside")]
    public void Passwords_no_auth_mechanism_can_send_are_refused(string password)
    {
        using var dir = new TempDirectory();
        var path = dir.File("smtp-users");

        var e = Assert.Throws<ArgumentException>(() => SmtpUserStore.SetPassword(path, "alice", password, Fast));

        Assert.Equal("password", e.ParamName);
        Assert.False(File.Exists(path));
    }
}
