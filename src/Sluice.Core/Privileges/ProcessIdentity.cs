// Who the process runs as, and the one-way change from root to an unprivileged user. glibc's
// setgroups/setgid/setuid apply to every thread of the process (it signals them: the runtime has many),
// so these are libc's wrappers, not raw system calls. Order: groups, then gid, then uid (after setuid
// there is no right left to change the groups).
using System.Runtime.InteropServices;

namespace Sluice.Core.Privileges;

public static partial class ProcessIdentity
{
    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEffectiveUid();

    [LibraryImport("libc", EntryPoint = "getegid")]
    private static partial uint GetEffectiveGid();

    [LibraryImport("libc", EntryPoint = "getresuid", SetLastError = true)]
    private static partial int GetResUid(out uint real, out uint effective, out uint saved);

    [LibraryImport("libc", EntryPoint = "getresgid", SetLastError = true)]
    private static partial int GetResGid(out uint real, out uint effective, out uint saved);

    [LibraryImport("libc", EntryPoint = "setgroups", SetLastError = true)]
    private static partial int SetGroups(nuint count, in uint groups);

    [LibraryImport("libc", EntryPoint = "setgid", SetLastError = true)]
    private static partial int SetGid(uint gid);

    [LibraryImport("libc", EntryPoint = "setuid", SetLastError = true)]
    private static partial int SetUid(uint uid);

    [LibraryImport("libc", EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Access(string path, int mode);

    private const int WriteAndSearch = 2 | 1; // W_OK | X_OK

    public static uint EffectiveUid => GetEffectiveUid();

    public static uint EffectiveGid => GetEffectiveGid();

    public static bool IsRoot => EffectiveUid == 0;

    /// <summary>
    /// Becomes <paramref name="uid"/>:<paramref name="gid"/> for good (real, effective and saved ids; the only
    /// supplementary group is <paramref name="gid"/>, as Postfix's set_ugid does), then proves there is no way back.
    /// </summary>
    /// <exception cref="InvalidOperationException">A step failed, or root could be regained.</exception>
    public static void DropTo(uint uid, uint gid)
    {
        if (SetGroups(1, gid) != 0) throw Failed($"setgroups([{gid}])");
        if (SetGid(gid) != 0) throw Failed($"setgid({gid})");
        if (SetUid(uid) != 0) throw Failed($"setuid({uid})");
        if (uid != 0 && SetUid(0) == 0) throw new InvalidOperationException("setuid(0) succeeded after dropping privileges");
        if (GetResUid(out var ru, out var eu, out var su) != 0 || GetResGid(out var rg, out var eg, out var sg) != 0)
            throw Failed("getresuid/getresgid");
        if ((ru, eu, su) != (uid, uid, uid) || (rg, eg, sg) != (gid, gid, gid))
            throw new InvalidOperationException($"after the drop the process runs as uids {ru}/{eu}/{su}, gids {rg}/{eg}/{sg}, not {uid}/{gid}");
    }

    /// <summary>Whether this process may create and remove files in the directory <paramref name="path"/>.</summary>
    public static bool CanWriteIn(string path) => Access(path, WriteAndSearch) == 0;

    private static InvalidOperationException Failed(string call) =>
        new($"{call} failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
}
