// DataDir/sluice.pid: the running server's PID, as qmail-send's, so `queue flush` and `reload` can
// signal it. A file left by a killed server is overwritten at the next start and never signalled.
using System.Globalization;

namespace Sluice.Core.IO;

public static class PidFile
{
    /// <summary>Writes this process's PID (whole, via a rename: a reader never sees half of it).</summary>
    public static void Write(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tmp = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllText(tmp, Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Removes the file if it still names this process (a later server may have taken it over).</summary>
    public static void Remove(string path)
    {
        if (Read(path) == Environment.ProcessId) File.Delete(path);
    }

    /// <summary>The PID of the `sluice serve` the file names, or null with why there is none running.</summary>
    public static int? FindServer(string path, out string whyNot)
    {
        whyNot = "";
        if (Read(path) is not { } pid)
        {
            whyNot = $"no {path}";
            return null;
        }
        if (!IsSluiceServe(pid))
        {
            whyNot = $"{path} is stale: pid {pid} is not a running sluice serve";
            return null;
        }
        return pid;
    }

    private static int? Read(string path)
    {
        try
        {
            return int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : null;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// The PID may have been reused since a server was killed: signal it only if its command line is
    /// `sluice … serve` (the apphost, or `dotnet sluice.dll`). Where there is no /proc, any live process counts.
    /// </summary>
    private static bool IsSluiceServe(int pid)
    {
        var cmdline = $"/proc/{pid}/cmdline";
        if (!Directory.Exists("/proc/self")) return UnixSignal.Send(pid, 0) == 0;
        string[] args;
        try
        {
            args = File.ReadAllText(cmdline).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        var program = Array.FindIndex(args, a => Path.GetFileName(a) is "sluice" or "sluice.dll");
        return program >= 0 && args.Skip(program + 1).Contains("serve");
    }
}
