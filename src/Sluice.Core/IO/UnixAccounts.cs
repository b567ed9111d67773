// Local users and groups by name (getpwnam(3), getgrnam(3)) and giving a file to them (chown(2),
// fchown(2)), which .NET has no API for: Mailboxes.Owner/Group and Http.SocketGroup name them.
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Sluice.Core.IO;

public static partial class UnixAccounts
{
    /// <summary>chown(2)'s "leave this one as it is" (-1 as uid_t/gid_t).</summary>
    public const uint Unchanged = uint.MaxValue;

    [LibraryImport("libc", EntryPoint = "getpwnam", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint GetPasswd(string name);

    [LibraryImport("libc", EntryPoint = "getgrnam", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint GetGroup(string name);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEffectiveUid();

    [LibraryImport("libc", EntryPoint = "chown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Chown(string path, uint uid, uint gid);

    [LibraryImport("libc", EntryPoint = "fchown", SetLastError = true)]
    private static partial int Fchown(SafeFileHandle fd, uint uid, uint gid);

    public static bool IsRoot => OperatingSystem.IsLinux() && GetEffectiveUid() == 0;

    /// <summary>The uid of a user name or number; null when there is no such user.</summary>
    public static uint? UserId(string name) => Lookup(name, GetPasswd, 2 * nint.Size); // struct passwd: pw_name, pw_passwd, pw_uid

    /// <summary>The gid of a group name or number; null when there is no such group.</summary>
    public static uint? GroupId(string name) => Lookup(name, GetGroup, 2 * nint.Size); // struct group: gr_name, gr_passwd, gr_gid

    private static uint? Lookup(string name, Func<string, nint> get, int idOffset)
    {
        if (uint.TryParse(name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id)) return id;
        if (!OperatingSystem.IsLinux()) return null;
        var entry = get(name);
        return entry == 0 ? null : (uint)Marshal.ReadInt32(entry, idOffset);
    }

    public static void Give(string path, uint uid, uint gid)
    {
        if (Chown(path, uid, gid) != 0) throw new IOException($"chown {path} to {uid}:{gid}: errno {Marshal.GetLastPInvokeError()}");
    }

    public static void Give(SafeFileHandle file, string path, uint uid, uint gid)
    {
        if (Fchown(file, uid, gid) != 0) throw new IOException($"chown {path} to {uid}:{gid}: errno {Marshal.GetLastPInvokeError()}");
    }
}
