// fsync of a directory and fdatasync of a file, which .NET has no API for. A directory's fsync makes a
// created or renamed file's name survive a power cut (rename(2) alone makes it visible, not durable).
using System.Runtime.InteropServices;

namespace Sluice.Core.IO;

public static partial class DurableFile
{
    private const int ReadOnly = 0, Directory = 0x10000; // O_RDONLY | O_DIRECTORY on Linux

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int Fdatasync(Microsoft.Win32.SafeHandles.SafeFileHandle fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    private static long _syncs;

    /// <summary>fsync and fdatasync calls made through this class and <see cref="CountSync"/>.</summary>
    public static long SyncCount => Interlocked.Read(ref _syncs);

    public static void CountSync() => Interlocked.Increment(ref _syncs);

    public static void SyncDirectory(string path)
    {
        if (!OperatingSystem.IsLinux()) return;
        var fd = Open(path, ReadOnly | Directory);
        if (fd < 0) throw new IOException($"open {path}: errno {Marshal.GetLastPInvokeError()}");
        try
        {
            CountSync();
            if (Fsync(fd) != 0) throw new IOException($"fsync {path}: errno {Marshal.GetLastPInvokeError()}");
        }
        finally
        {
            Close(fd);
        }
    }

    /// <summary>Flushes a file's data and metadata to disk.</summary>
    public static void Sync(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        CountSync();
        RandomAccess.FlushToDisk(handle);
    }

    /// <summary>
    /// Flushes a file's data and what is needed to read it back (its size, its blocks), not its times:
    /// fdatasync(2). Over blocks already written and flushed it writes the data alone, no inode.
    /// </summary>
    public static void SyncData(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        if (!OperatingSystem.IsLinux())
        {
            Sync(handle);
            return;
        }
        CountSync();
        if (Fdatasync(handle) != 0) throw new IOException($"fdatasync: errno {Marshal.GetLastPInvokeError()}");
    }
}
