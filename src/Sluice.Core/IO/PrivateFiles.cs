// Nothing Sluice writes is readable by other local users unless the operator says so: the server runs
// under umask 077, so every file and directory it creates (spool, logs, sockets, databases) starts
// without group or other bits, set by open(2) itself rather than by a chmod that would leave a window.
using System.Runtime.InteropServices;

namespace Sluice.Core.IO;

public static partial class PrivateFiles
{
    private const UnixFileMode GroupAccess = UnixFileMode.GroupRead | UnixFileMode.GroupWrite;
    private const UnixFileMode OtherAccess = UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint Umask(uint mask);

    /// <summary>From here on this process (and the children it starts) creates files 0600 and directories 0700 at most.</summary>
    public static void Apply()
    {
        if (!OperatingSystem.IsWindows()) Umask(0x3F); // 077
    }

    /// <summary>
    /// Why a secret file must not be used, or null: a key or password file that group or others may read is refused
    /// (as OpenSSH refuses such a host key and Postfix its TLS key) since another local user may already have copied it.
    /// </summary>
    public static string? ExposedSecret(string path)
    {
        if (OperatingSystem.IsWindows() || !File.Exists(path)) return null;
        var mode = File.GetUnixFileMode(path);
        if ((mode & (GroupAccess | OtherAccess)) == 0) return null;
        var who = (mode & OtherAccess) != 0 ? "other users" : "its group";
        return $"\"{path}\" is readable or writable by {who} (mode {Octal(mode)}): a secret must be private to its owner; chmod 600 it";
    }

    /// <summary>A directory only this user may use (0700), made so by mkdir(2) itself whatever the umask.</summary>
    public static void CreateDirectory(string path)
    {
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(path);
        else Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0xFFF, 8).PadLeft(3, '0');
}
