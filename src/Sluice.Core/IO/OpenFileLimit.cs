// Every SMTP session holds one socket, so the open-files limit (RLIMIT_NOFILE) caps sessions: at start
// the soft limit is raised to the hard one, as a daemon should, and the server says what that allows.
using System.Globalization;
using System.Runtime.InteropServices;

namespace Sluice.Core.IO;

public static partial class OpenFileLimit
{
    private const int RlimitNofile = 7; // Linux
    private const ulong Infinity = ulong.MaxValue; // RLIM_INFINITY on Linux x64

    /// <summary>
    /// Descriptors kept back from the estimate for listeners, spool files, the log, epoll and the runtime. The
    /// runtime holds two descriptors per loaded assembly and loads most of them after start-up (when the estimate
    /// is made): measured, ~130 more non-socket descriptors by the time a fan-out is under way, more once TLS,
    /// DKIM or DSNs load theirs. Too small a reserve means EMFILE at connect or accept instead of a wait for a slot.
    /// </summary>
    public const int Reserve = 300;

    /// <summary>struct rlimit on Linux x64: two unsigned longs.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Max;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRLimit(int resource, in RLimit limit);

    /// <summary>The limits after the attempt; <see cref="Error"/> says why the soft limit is still below the hard one.</summary>
    public readonly record struct Limits(ulong Soft, ulong Hard, string? Error)
    {
        public bool Raised => Error is null && Soft == Hard;

        /// <summary>Roughly how many more sockets fit: the soft limit less what is open now and <see cref="Reserve"/>.</summary>
        public long SessionEstimate(int openNow) =>
            Math.Max(0, (long)Math.Min(Soft, (ulong)int.MaxValue) - openNow - Reserve);

        public static string Format(ulong n) => n == Infinity ? "unlimited" : n.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Reads RLIMIT_NOFILE; null where there is no such limit to read (not Linux).</summary>
    public static Limits? Read()
    {
        if (!OperatingSystem.IsLinux()) return null;
        return GetRLimit(RlimitNofile, out var l) == 0
            ? new Limits(l.Current, l.Max, null)
            : new Limits(0, 0, $"getrlimit: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Raises the soft RLIMIT_NOFILE to the hard limit and returns both; null when not on Linux.</summary>
    public static Limits? Raise()
    {
        var read = Read();
        if (read is not { Error: null } before) return read;
        if (before.Soft == before.Hard) return before;
        var wanted = new RLimit { Current = before.Hard, Max = before.Hard };
        if (SetRLimit(RlimitNofile, wanted) != 0)
            return before with { Error = $"setrlimit: errno {Marshal.GetLastPInvokeError()}" };
        return Read() is { Error: null } after ? after : before with { Error = "getrlimit failed after setrlimit" };
    }

    /// <summary>Sets the soft limit only (tests lower it to see <see cref="Raise"/> undo that); false on failure.</summary>
    internal static bool TrySetSoft(ulong soft) =>
        Read() is { Error: null } l && SetRLimit(RlimitNofile, new RLimit { Current = soft, Max = l.Hard }) == 0;

    /// <summary>Descriptors this process has open now (entries of /proc/self/fd); 0 where that cannot be read.</summary>
    public static int OpenNow()
    {
        try
        {
            return Directory.EnumerateFileSystemEntries("/proc/self/fd").Count();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }
}
