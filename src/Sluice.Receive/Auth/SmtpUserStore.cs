// Who may SMTP AUTH (RFC 4954): "name:bcrypt-hash" lines in one file, re-read when it changes so
// `sluice passwd` takes effect without a restart. (Mailbox users may carry a hash of the same form in
// the configuration instead; the session checks those with VerifyHashAsync.)
using System.Text;
using BCryptNet = BCrypt.Net.BCrypt;

namespace Sluice.Receive.Auth;

public sealed class SmtpUserStore : ISmtpAuthenticator
{
    public const int DefaultWorkFactor = 11;

    // An unknown user is checked against this (cost 11, of a password nobody knows) so that a
    // wrong name takes as long as a wrong password: no timing oracle for which users exist.
    private const string DummyHash = "$2a$11$Nk0dg234SBXdXhBrPAfzw.GPPZV8ji/yd4j7HnU301BPcg35qjwQO";

    // Timestamps of a file written within this long before it was read may hide a later write
    // (coarse file-system clocks), so such a snapshot is re-read once more (git's "racy clean").
    private static readonly TimeSpan RacyWindow = TimeSpan.FromSeconds(2);

    private readonly string _path;
    private readonly Action<string> _log;
    private readonly Lock _lock = new();
    private Snapshot? _snapshot;
    private int _loads;

    public SmtpUserStore(string path, Action<string>? log = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _path = Path.GetFullPath(path);
        _log = log ?? (_ => { });
    }

    /// <summary>How often the file has been (re-)read; lets tests see that an unchanged file is not.</summary>
    internal int Loads => Volatile.Read(ref _loads);

    /// <summary>True when <paramref name="user"/> (case-sensitive) exists and <paramref name="password"/> is theirs.</summary>
    public Task<bool> VerifyAsync(string user, string password)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(password);
        // bcrypt is slow on purpose (~100ms at cost 11): keep it off the session's thread.
        return Task.Run(() => Verify(user, password));
    }

    /// <summary>True when <paramref name="password"/> matches the bcrypt <paramref name="hash"/>; off the caller's thread, as bcrypt is slow.</summary>
    public static Task<bool> VerifyHashAsync(string password, string hash) => Task.Run(() => Check(password, hash));

    private bool Verify(string user, string password)
    {
        var known = Current().Users.TryGetValue(user, out var hash);
        return Check(password, known ? hash! : DummyHash) && known;
    }

    private static bool Check(string password, string hash)
    {
        try
        {
            return BCryptNet.Verify(password, hash);
        }
        catch (Exception e) when (e is BCrypt.Net.SaltParseException or ArgumentException)
        {
            BCryptNet.Verify(password, DummyHash); // a malformed hash costs the same as any other miss
            return false;
        }
    }

    private Snapshot Current()
    {
        var info = new FileInfo(_path);
        var (exists, written, length) = info.Exists ? (true, info.LastWriteTimeUtc, info.Length) : (false, default, -1L);
        lock (_lock)
        {
            var s = _snapshot;
            if (s is not null && s.Exists == exists && s.Written == written && s.Length == length && !s.Racy) return s;
            var readAt = DateTime.UtcNow;
            _snapshot = s = new Snapshot(exists, written, length, written >= readAt - RacyWindow, exists ? Read() : []);
            Interlocked.Increment(ref _loads);
            return s;
        }
    }

    private Dictionary<string, string> Read()
    {
        var users = new Dictionary<string, string>(StringComparer.Ordinal);
        string[] lines;
        try
        {
            lines = File.ReadAllLines(_path, Encoding.UTF8);
        }
        catch (FileNotFoundException)
        {
            return users;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log($"auth: cannot read {_path}: {e.Message}; no user can authenticate");
            return users;
        }
        for (int i = 0; i < lines.Length; i++)
        {
            if (!UserFile.TryParse(lines[i], out var name, out var hash)) continue;
            if (name is null || hash.Length == 0)
                _log($"auth: {_path}:{i + 1}: not a \"name:bcrypt-hash\" line; ignored");
            else
                users.TryAdd(name, hash); // the first line for a name counts, as in /etc/passwd
        }
        return users;
    }

    /// <summary>Adds <paramref name="user"/> or replaces their password; other lines stay as they are.</summary>
    public static void SetPassword(string path, string user, string password, int workFactor = DefaultWorkFactor)
    {
        UserFile.CheckName(user);
        ArgumentNullException.ThrowIfNull(password);
        if (password.Length == 0) throw new ArgumentException("the password is empty", nameof(password));
        // RFC 4616 §2 cannot carry NUL, and an AUTH LOGIN line (RFC 4954 §4) cannot carry CR or LF.
        if (password.AsSpan().IndexOfAny('\0', '\r', '\n') >= 0)
            throw new ArgumentException("the password contains NUL, CR or LF, which no AUTH mechanism can send", nameof(password));
        ArgumentOutOfRangeException.ThrowIfLessThan(workFactor, 4);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(workFactor, 31);
        // bcrypt uses the first 72 bytes of the password; longer ones still work, their tail is ignored.
        UserFile.Rewrite(path, user, $"{user}:{BCryptNet.HashPassword(password, workFactor)}");
    }

    /// <summary>Removes <paramref name="user"/>; false when they were not in the file.</summary>
    public static bool Remove(string path, string user)
    {
        UserFile.CheckName(user);
        return UserFile.Rewrite(path, user, null);
    }

    private sealed record Snapshot(bool Exists, DateTime Written, long Length, bool Racy, Dictionary<string, string> Users);
}
