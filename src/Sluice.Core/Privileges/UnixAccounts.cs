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
    public static UnixUser? FindUser(string name) => Read($"user \"{name}\"", (byte* b, nuint n, out int error) =>
    {
        Passwd entry;
        Passwd* result = null;
        error = GetPasswordEntry(name, &entry, b, n, &result);
        return result is null ? null : User(result);
    });

    /// <summary>The user with <paramref name="uid"/>; null when the database has no name for it.</summary>
    public static UnixUser? FindUser(uint uid) => Read($"uid {uid}", (byte* b, nuint n, out int error) =>
    {
        Passwd entry;
        Passwd* result = null;
        error = GetPasswordEntryById(uid, &entry, b, n, &result);
        return result is null ? null : User(result);
    });

    /// <summary>The gid of the group named <paramref name="name"/>; null when there is none.</summary>
    /// <exception cref="IOException">The database could not be read.</exception>
    public static uint? FindGroupId(string name) => Read($"group \"{name}\"", (byte* b, nuint n, out int error) =>
    {
        Group entry;
        Group* result = null;
        error = GetGroupEntry(name, &entry, b, n, &result);
        return result is null ? null : (uint?)result->Gid;
    });

    private static UnixUser User(Passwd* entry) => new(Marshal.PtrToStringUTF8(entry->Name) ?? "", entry->Uid, entry->Gid);

    private delegate T Lookup<T>(byte* buffer, nuint size, out int error);

    /// <summary>Runs a *_r lookup, with more room each time it answers ERANGE (a group with many members, a long GECOS).</summary>
    private static T? Read<T>(string what, Lookup<T?> lookup)
    {
        for (var size = BufferBytes; ; size *= 4)
        {
            var buffer = new byte[size];
            fixed (byte* b = buffer)
            {
                var found = lookup(b, (nuint)size, out var error);
                if (error == ERANGE && size < 1 << 22) continue;
                if (error != 0) throw new IOException($"looking up {what}: errno {error}");
                return found;
            }
        }
    }
}
