// How `queue flush` reaches the running `sluice serve`: the PID in DataDir/sluice.pid and a signal,
// as qmail's tools talk to qmail-send. No server running is exit 69 (EX_UNAVAILABLE).
using Sluice.Core.Configuration;
using Sluice.Core.IO;

namespace Sluice.Verbs;

internal static class RunningServer
{
    /// <param name="verb">The verb, which starts each line it prints.</param>
    /// <param name="request">What the server is asked, e.g. "to retry deferred mail now".</param>
    public static int Signal(SluiceOptions options, int signal, string verb, string request)
    {
        if (PidFile.FindServer(options.PidFile, out var whyNot) is not { } pid)
        {
            Console.Error.WriteLine($"{verb}: no sluice serve is running for DataDir {Path.GetFullPath(options.DataDir)} ({whyNot})");
            return ExitCodes.Unavailable;
        }
        switch (UnixSignal.Send(pid, signal))
        {
            case 0:
                Console.WriteLine($"{verb}: asked sluice (pid {pid}) {request}");
                return ExitCodes.Ok;
            case UnixSignal.NotPermitted:
                Console.Error.WriteLine($"{verb}: not allowed to signal sluice (pid {pid}); run as its user");
                return ExitCodes.NoPermission;
            case var errno:
                Console.Error.WriteLine($"{verb}: cannot signal sluice (pid {pid}): errno {errno}; it may have just stopped");
                return ExitCodes.Unavailable;
        }
    }
}
