// Giving a file to a user or group (chown(2), fchown(2)), which .NET has no API for: Mailboxes.Owner/Group,
// Http.SocketGroup and a DataDir made for User name them; names are looked up in UnixAccounts.
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Sluice.Core.Privileges;

public static partial class FileOwnership
{
    /// <summary>chown(2)'s "leave this one as it is" (-1 as uid_t/gid_t).</summary>
    public const uint Unchanged = uint.MaxValue;

    [LibraryImport("libc", EntryPoint = "chown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Chown(string path, uint uid, uint gid);

    [LibraryImport("libc", EntryPoint = "fchown", SetLastError = true)]
    private static partial int Fchown(SafeFileHandle fd, uint uid, uint gid);

    /// <summary>The uid of a user name or number; null when there is no such user.</summary>
    public static uint? UserId(string name) =>
        uint.TryParse(name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) ? id
        : OperatingSystem.IsLinux() ? UnixAccounts.FindUser(name)?.Uid : null;

    /// <summary>The gid of a group name or number; null when there is no such group.</summary>
    public static uint? GroupId(string name) =>
        uint.TryParse(name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) ? id
        : OperatingSystem.IsLinux() ? UnixAccounts.FindGroupId(name) : null;

    /// <exception cref="IOException">chown failed (not root, or not the file's owner giving it to one of its groups).</exception>
    public static void Give(string path, uint uid, uint gid)
    {
        if (Chown(path, uid, gid) != 0) throw new IOException($"chown {path} to {uid}:{gid}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
    }

    public static void Give(SafeFileHandle file, string path, uint uid, uint gid)
    {
        if (Fchown(file, uid, gid) != 0) throw new IOException($"chown {path} to {uid}:{gid}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
    }
}
