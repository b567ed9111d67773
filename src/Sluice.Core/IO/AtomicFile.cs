// Replacing a small file so that a crash leaves the old or the new content, never a torn one:
// write a temp file, fsync it, rename(2) it over the target, fsync the directory.
namespace Sluice.Core.IO;

public static class AtomicFile
{
    public const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode Readable = OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>Writes <paramref name="content"/> to <paramref name="path"/> durably; the file gets <paramref name="mode"/>.</summary>
    public static void Write(string path, ReadOnlySpan<byte> content, UnixFileMode mode, bool syncDirectory = true)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) create.UnixCreateMode = mode;
            using (var stream = new FileStream(temp, create))
            {
                stream.Write(content);
                stream.Flush();
                DurableFile.Sync(stream.SafeFileHandle);
            }
            File.Move(temp, full, overwrite: true); // rename(2): atomic within one directory
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
        if (syncDirectory) DurableFile.SyncDirectory(dir);
    }
}
