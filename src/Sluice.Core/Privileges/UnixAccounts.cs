// Users and groups by name from the system's databases (getpwnam_r, getgrnam_r: /etc/passwd, NSS),
// for the `User` and `Group` keys a root-started server drops to.
using System.Runtime.InteropServices;

namespace Sluice.Core.Privileges;

/// <summary>A user as the password database has it: what the server becomes with <c>User</c>.</summary>
public sealed record UnixUser(string Name, uint Uid, uint Gid);

public static unsafe partial class UnixAccounts
{
    private const int BufferBytes = 16 * 1024;
    private const int ERANGE = 34;

    /// <summary>struct passwd on Linux x64.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Passwd
    {
        public nint Name, Password;
        public uint Uid, Gid;
        public nint Gecos, Home, Shell;
    }

    /// <summary>struct group on Linux x64.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Group
    {
        public nint Name, Password;
        public uint Gid;
        public nint Members;
    }

    [LibraryImport("libc", EntryPoint = "getpwnam_r", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int GetPasswordEntry(string name, Passwd* entry, byte* buffer, nuint size, Passwd** result);

    [LibraryImport("libc", EntryPoint = "getgrnam_r", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int GetGroupEntry(string name, Group* entry, byte* buffer, nuint size, Group** result);

    [LibraryImport("libc", EntryPoint = "getpwuid_r")]
    private static partial int GetPasswordEntryById(uint uid, Passwd* entry, byte* buffer, nuint size, Passwd** result);

    /// <summary>The user named <paramref name="name"/>; null when there is none.</summary>
    /// <exception cref="IOException">The database could not be read.</exception>
    public static UnixUser? FindUser(string name) => ReadUser(name, (e, b, n, r) => GetPasswordEntry(name, e, b, n, r));

    /// <summary>The user with <paramref name="uid"/>; null when the database has no name for it.</summary>
    public static UnixUser? FindUser(uint uid) => ReadUser($"uid {uid}", (e, b, n, r) => GetPasswordEntryById(uid, e, b, n, r));

    /// <summary>The gid of the group named <paramref name="name"/>; null when there is none.</summary>
    /// <exception cref="IOException">The database could not be read.</exception>
    public static uint? FindGroupId(string name)
    {
        Group entry;
        Group* result = null;
        var buffer = new byte[BufferBytes];
        fixed (byte* b = buffer)
        {
            var error = GetGroupEntry(name, &entry, b, (nuint)buffer.Length, &result);
            if (error != 0) throw new IOException($"getgrnam_r(\"{name}\"): errno {error}");
            return result is null ? null : result->Gid;
        }
    }

    private delegate int PasswdLookup(Passwd* entry, byte* buffer, nuint size, Passwd** result);

    private static UnixUser? ReadUser(string what, PasswdLookup lookup)
    {
        // A long entry (many groups, a long GECOS) wants more room: ERANGE says so.
        for (var size = BufferBytes; ; size *= 4)
        {
            Passwd entry;
            Passwd* result = null;
            var buffer = new byte[size];
            fixed (byte* b = buffer)
            {
                var error = lookup(&entry, b, (nuint)size, &result);
                if (error == ERANGE && size < 1 << 22) continue;
                if (error != 0) throw new IOException($"password database lookup of {what}: errno {error}");
                return result is null ? null : new UnixUser(Marshal.PtrToStringUTF8(result->Name) ?? "", result->Uid, result->Gid);
            }
        }
    }
}
