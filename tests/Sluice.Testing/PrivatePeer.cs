// A peer unpacked from Debian's packages by a script under tests/peers (never installed system-wide): the
// script fetches them on first use and prints the root they were unpacked into.
using System.Diagnostics;

namespace Sluice.Testing;

public static class PrivatePeer
{
    /// <summary>The root tests/peers/SCRIPT unpacked its packages into.</summary>
    public static async Task<string> RootAsync(string script)
    {
        var path = Path.Combine(SluiceProcess.RepositoryRoot, "tests", "peers", script);
        using var process = Process.Start(new ProcessStartInfo(path) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        if (process.ExitCode != 0) throw new InvalidOperationException($"{path} failed (exit {process.ExitCode}): {await errors}");
        return (await output).Trim();
    }
}
