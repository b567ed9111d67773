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

    /// <summary>Sends <paramref name="signal"/> (0 only checks the process exists); returns 0 or the errno.</summary>
    public static int Send(int pid, int signal) => Kill(pid, signal) == 0 ? 0 : Marshal.GetLastPInvokeError();
}
