// Free space on the spool's file system, asked at MAIL so a nearly full disk turns mail away with
// 452 4.3.1 (as Postfix's queue_minfree does) instead of failing half-way through DATA.
namespace Sluice.Receive;

public sealed class SpoolSpace(string spoolPath, long minFreeBytes, TimeProvider time)
{
    private static readonly TimeSpan Refresh = TimeSpan.FromSeconds(1);
    private long _free = long.MaxValue;
    private DateTimeOffset _checked = DateTimeOffset.MinValue;

    /// <summary>True when <paramref name="messageBytes"/> more still leaves the minimum free.</summary>
    public bool HasRoomFor(long messageBytes) => FreeBytes() - Math.Max(messageBytes, 0) >= minFreeBytes;

    private long FreeBytes()
    {
        var now = time.GetUtcNow();
        if (now - _checked < Refresh) return Volatile.Read(ref _free);
        _checked = now;
        try
        {
            Volatile.Write(ref _free, new DriveInfo(ExistingAncestor(spoolPath)).AvailableFreeSpace);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            // Unknown is not full: the spool write itself still fails safely (451) if it must.
            Volatile.Write(ref _free, long.MaxValue);
        }
        return Volatile.Read(ref _free);
    }

    private static string ExistingAncestor(string path)
    {
        var dir = Path.GetFullPath(path);
        while (!Directory.Exists(dir) && Path.GetDirectoryName(dir) is { } parent) dir = parent;
        return dir;
    }
}
