// Who may read the Maildirs Sluice creates: by default only the server's user (0700 directories,
// 0600 files, as Postfix's virtual(8) makes them); Mailboxes.Mode, Owner and Group open them to an
// IMAP server running as another user (Dovecot's vmail). A file takes the directories' mode without
// its execute bits, as Dovecot derives a new file's mode from its directory's.
using Microsoft.Win32.SafeHandles;
using Sluice.Core.Configuration;
using Sluice.Core.Privileges;
using Sluice.Core.IO;

namespace Sluice.Core.Mailboxes;

public sealed class MaildirPermissions
{
    public const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode Execute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    public static readonly MaildirPermissions Private = new(PrivateDirectory, FileOwnership.Unchanged, FileOwnership.Unchanged);

    public UnixFileMode DirectoryMode { get; }
    public UnixFileMode FileMode => DirectoryMode & ~Execute;
    private readonly uint _uid, _gid;
    private bool Widened => DirectoryMode != PrivateDirectory;
    private bool Chowns => _uid != FileOwnership.Unchanged || _gid != FileOwnership.Unchanged;

    private MaildirPermissions(UnixFileMode directoryMode, uint uid, uint gid) => (DirectoryMode, _uid, _gid) = (directoryMode, uid, gid);

    /// <summary>The permissions the options ask for (validated at load); Owner or Group is refused when this process may not give files away.</summary>
    public static MaildirPermissions From(MailboxesOptions m)
    {
        var mode = m.Mode is { } text && TryParseMode(text, out var parsed) ? parsed : PrivateDirectory;
        var uid = m.Owner is { } owner ? FileOwnership.UserId(owner) ?? throw Unknown("Mailboxes:Owner", "user", owner) : FileOwnership.Unchanged;
        var gid = m.Group is { } group ? FileOwnership.GroupId(group) ?? throw Unknown("Mailboxes:Group", "group", group) : FileOwnership.Unchanged;
        // Checked as the server runs (after a drop to User): only root may give files to another user or to a group it is not in.
        if (!ProcessIdentity.IsRoot && (uid is not FileOwnership.Unchanged && uid != ProcessIdentity.EffectiveUid || gid is not FileOwnership.Unchanged && gid != ProcessIdentity.EffectiveGid))
            throw new ConfigurationException($"key '{(m.Owner is null ? "Mailboxes:Group" : "Mailboxes:Owner")}': giving Maildirs to another user or group needs root (chown(2)); this server runs as uid {ProcessIdentity.EffectiveUid} (with User, make it Mailboxes.Owner, or run as the IMAP server's user)");
        return new MaildirPermissions(mode, uid, gid);
    }

    private static ConfigurationException Unknown(string key, string what, string name) => new($"key '{key}': there is no {what} \"{name}\" on this host");

    /// <summary>"0750" or "750": octal permission bits for Maildir directories; the owner keeps rwx, no set-id or sticky bits.</summary>
    public static bool TryParseMode(string text, out UnixFileMode mode)
    {
        mode = default;
        if (text.Length is < 3 or > 4 || !text.All(c => c is >= '0' and <= '7')) return false;
        var value = (UnixFileMode)Convert.ToInt32(text, 8);
        if ((value & PrivateDirectory) != PrivateDirectory || ((int)value & ~0x1FF) != 0) return false; // 0x1FF: 0777
        mode = value;
        return true;
    }

    /// <summary>Creates <paramref name="path"/> and any missing parents up to and including <paramref name="root"/>, each with these permissions.</summary>
    public void CreateDirectory(string root, string path)
    {
        var missing = new Stack<string>();
        for (var d = Path.GetFullPath(path); !Directory.Exists(d); d = Path.GetDirectoryName(d)!)
        {
            missing.Push(d);
            if (d.Length <= root.Length) break;
        }
        foreach (var d in missing)
        {
            if (OperatingSystem.IsWindows()) { Directory.CreateDirectory(d); continue; }
            Directory.CreateDirectory(d, DirectoryMode); // the umask may take bits off: widen below, never narrower than asked
            if (Widened) File.SetUnixFileMode(d, DirectoryMode);
            if (Chowns) FileOwnership.Give(d, _uid, _gid);
        }
    }

    /// <summary>Options for a new file: created private; <see cref="Apply"/> widens and gives it away before it is renamed into place.</summary>
    public static FileStreamOptions NewFile(System.IO.FileMode mode = System.IO.FileMode.CreateNew)
    {
        var options = new FileStreamOptions { Mode = mode, Access = FileAccess.Write, Share = FileShare.ReadWrite };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        return options;
    }

    public void Apply(SafeFileHandle file, string path)
    {
        if (OperatingSystem.IsWindows()) return;
        if (Widened) File.SetUnixFileMode(file, FileMode);
        if (Chowns) FileOwnership.Give(file, path, _uid, _gid);
    }
}
