// kill(2), which .NET has no API for (Process.Kill only sends SIGKILL): the operator verbs signal
// the running server with it. Numbers are Linux's; PosixSignalRegistration takes them as raw values.
using System.Runtime.InteropServices;

namespace Sluice.Core.IO;

public static partial class UnixSignal
{
    /// <summary>SIGHUP: re-read the configuration.</summary>
    public const int Hangup = 1;
    /// <summary>SIGALRM: retry deferred mail now (qmail-send's meaning).</summary>
    public const int Alarm = 14;

    public const int NoSuchProcess = 3; // ESRCH
    public const int NotPermitted = 1; // EPERM

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "sigaction", SetLastError = true)]
    private static partial int QueryAction(int signal, nint newAction, [Out] byte[] oldAction);

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial nint SetHandler(int signal, nint handler);

    private const nint Default = 0, Ignore = 1; // SIG_DFL, SIG_IGN

    /// <summary>
    /// If <paramref name="signal"/> is ignored (SIG_IGN, as nohup leaves SIGHUP), sets it to its default and
    /// returns true; the caller then handles it at once. Any other disposition is left as it is.
    /// </summary>
    public static bool StopIgnoring(int signal)
    {
        // struct sigaction (152 bytes on Linux x86-64 and arm64) begins with the handler; only that is read.
        var action = new byte[256];
        if (QueryAction(signal, 0, action) != 0 || BitConverter.ToInt64(action) != Ignore) return false;
        SetHandler(signal, Default);
        return true;
    }

    /// <summary>Sends <paramref name="signal"/> (0 only checks the process exists); returns 0 or the errno.</summary>
    public static int Send(int pid, int signal) => Kill(pid, signal) == 0 ? 0 : Marshal.GetLastPInvokeError();
}
