// `sluice top`'s live view in a real terminal: run under tmux (a private server socket), read the
// screen with capture-pane, and find a row per queue and the busiest destination in the tables.
using System.Diagnostics;
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed class TopTerminalTests
{
    [Fact]
    public async Task Top_draws_a_row_per_queue_and_the_troubled_destination_in_a_real_terminal()
    {
        await using var sluice = await Instance.StartAsync(c =>
        {
            c["Queue"] = new { Count = 2 };
            c["Routes"] = new Dictionary<string, string> { ["*"] = "127.0.0.1:1" }; // refused: the destination shows its failures
        });
        await TestMail.SendAsync(sluice.Process.SmtpPort, "u@remote.test");
        await sluice.WaitForLogAsync("deferral: 451 4.4.1 127.0.0.1:1");
        var socket = $"sluice-test-{Environment.ProcessId}-{Guid.NewGuid():N}";
        var dll = Path.Combine(SluiceProcess.RepositoryRoot, ".build", "bin", "sluice.dll");

        await TmuxAsync(socket, "new-session", "-d", "-x", "160", "-y", "40", $"dotnet {dll} top --config {sluice.ConfigFile}");
        try
        {
            // The view redraws every second and there is no event to await in a terminal: read the screen until it is drawn.
            var screen = "";
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!(screen.Contains("busiest destinations", StringComparison.Ordinal) && screen.Contains("127.0.0.1:1", StringComparison.Ordinal)))
            {
                Assert.True(DateTime.UtcNow < deadline, "top drew no destination table within 60 s; the screen:\n" + screen);
                await Task.Delay(250);
                screen = await TmuxAsync(socket, "capture-pane", "-p");
            }
            var rows = screen.Split('\n');
            Assert.Contains(rows, r => r.Contains("│ queue1 ", StringComparison.Ordinal) && r.Contains("local 0/8 remote", StringComparison.Ordinal));
            Assert.Contains(rows, r => r.Contains("│ queue2 ", StringComparison.Ordinal));
            Assert.Contains(rows, r => r.Contains("sluice top — ", StringComparison.Ordinal));
            var destination = Assert.Single(rows, r => r.Contains("│ 127.0.0.1:1 ", StringComparison.Ordinal));
            Assert.Contains("connect to 127.0.0.1:1 failed", destination, StringComparison.Ordinal);
        }
        finally
        {
            await TmuxAsync(socket, "kill-server");
        }
    }

    /// <summary>tmux on its own server socket (-L), so the test never touches anyone else's sessions.</summary>
    private static async Task<string> TmuxAsync(string socket, params string[] args)
    {
        var psi = new ProcessStartInfo("tmux") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-L");
        psi.ArgumentList.Add(socket);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = await p.StandardOutput.ReadToEndAsync();
        var stderr = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, $"tmux {string.Join(' ', args)}: exit {p.ExitCode}: {stderr}");
        return stdout;
    }
}
