// The operator's view of a running server: `sluice top --once` (one line per active queue beginning
// queueN, then the destinations), /metrics in Prometheus text format and the JSON status, both from
// the admin API on the Unix socket in DataDir; and a clear refusal when nothing runs.
using System.Text.RegularExpressions;
using Sluice.Operate;
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed partial class TopAndMetricsTests
{
    [Fact]
    public async Task Top_once_prints_a_line_per_active_queue_then_the_destinations_with_their_trouble()
    {
        await using var sluice = await Instance.StartAsync(c =>
        {
            c["Queue"] = new { Count = 3 };
            c["Routes"] = new Dictionary<string, string> { ["*"] = "127.0.0.1:1" }; // refused: deferred, counted against the destination
        });
        await TestMail.SendAsync(sluice.Process.SmtpPort, "u@remote.test");
        await sluice.WaitForLogAsync("deferral: 451 4.4.1 127.0.0.1:1");

        var (exit, stdout, stderr) = await sluice.RunVerbAsync("top", "--once");
        Assert.True(exit == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["queue1", "queue2", "queue3"], lines.Take(3).Select(l => l.Split(' ')[0]));
        Assert.All(lines.Take(3), l => Assert.Matches(QueueLine(), l));
        Assert.Contains(lines, l => l.Contains("messages 1 recipients 1", StringComparison.Ordinal));
        var destination = Assert.Single(lines, l => l.StartsWith("destination 127.0.0.1:1 ", StringComparison.Ordinal));
        Assert.Matches(@"window \d+ rate/s [\d.]+ failures [1-9]\d* .*last-error "".*connect to 127\.0\.0\.1:1 failed", destination);
    }

    [Fact]
    public async Task Metrics_and_status_count_what_was_accepted_and_delivered()
    {
        await using var sluice = await Instance.StartAsync(c => c["Queue"] = new { Count = 2 });
        for (int i = 0; i < 3; i++) await TestMail.SendAsync(sluice.Process.SmtpPort, $"u{i}@remote.test");
        await sluice.Sink.WaitForCountAsync(3, TimeSpan.FromSeconds(30));
        // Each outcome is counted before its message's "end msg" line is written.
        await sluice.Process.WaitForLogAsync(_ => sluice.Process.Log.Count(l => l.Contains("end msg", StringComparison.Ordinal)) >= 3, TimeSpan.FromSeconds(30));

        using var http = AdminSocket.Client(sluice.Dir.File("var/admin.sock"));
        var metrics = await http.GetStringAsync("/metrics");
        Assert.Equal(3, Sum(metrics, "sluice_messages_accepted_total"));
        Assert.Contains("sluice_channel_slots{queue=\"queue1\",channel=\"remote\"} 20", metrics, StringComparison.Ordinal);
        var status = await http.GetStringAsync("/api/v1/status");
        Assert.Contains("\"queues\":[{\"name\":\"queue1\"", status, StringComparison.Ordinal);
        Assert.Equal(3, Sum(metrics, "sluice_delivery_attempts_total", "outcome=\"delivered\""));
        Assert.Equal(3, Sum(metrics, "sluice_channel_deliveries_total", "channel=\"remote\",outcome=\"delivered\""));
        Assert.Equal(0, Sum(metrics, "sluice_channel_deliveries_total", "channel=\"local\",outcome=\"delivered\""));
    }

    private static readonly string[][] AdminVerbs =
    [
        ["top", "--once"], ["top"], ["queue", "list"], ["queue", "show", "1.1"], ["queue", "hold", "--all"], ["queue", "release", "1.1"],
        ["queue", "delete", "--all"], ["queue", "bounce", "--all"], ["queue", "flush", "1.1"], ["queue", "shape"], ["setqload", "--count", "2"], ["reload"],
    ];

    [Fact]
    public async Task Every_admin_API_verb_without_a_running_server_says_none_runs_and_exits_69()
    {
        using var dir = new TempDirectory();
        var config = dir.File("sluice.json");
        await File.WriteAllTextAsync(config, $$"""{ "DataDir": "{{dir.File("var")}}" }""");
        foreach (var verb in AdminVerbs)
        {
            var (exit, stdout, stderr) = await SluiceProcess.RunAsync(dir.Path, "", [.. verb, "--config", config]);
            var name = verb[0] == "queue" ? $"queue {verb[1]}" : verb[0];
            Assert.True(exit == 69, $"{name} exited {exit}: {stderr}");
            Assert.Equal("", stdout);
            Assert.Equal($"{name}: no sluice serve is running for DataDir {dir.File("var")} (no {dir.File("var/admin.sock")})\n", stderr);
        }
    }

    [Fact]
    public async Task An_admin_socket_left_by_a_killed_server_is_named_as_nothing_listening()
    {
        await using var sluice = await Instance.StartAsync();
        sluice.Process.Kill();
        var socket = sluice.Dir.File("var/admin.sock");
        Assert.True(File.Exists(socket));
        foreach (var verb in new[] { AdminVerbs[0], AdminVerbs[2], AdminVerbs[^1] })
        {
            var (exit, _, stderr) = await sluice.RunVerbAsync(verb);
            var name = verb[0] == "queue" ? $"queue {verb[1]}" : verb[0];
            Assert.True(exit == 69, $"{name} exited {exit}: {stderr}");
            Assert.Equal($"{name}: no sluice serve is running for DataDir {sluice.Dir.File("var")} (nothing listens on {socket})\n", stderr);
        }
    }

    /// <summary>The sum of a metric's samples in Prometheus text, over its label sets that hold <paramref name="label"/>.</summary>
    private static double Sum(string metrics, string name, string label = "") =>
        metrics.Split('\n').Where(l => l.StartsWith(name, StringComparison.Ordinal) && l.Length > name.Length && l[name.Length] is '{' or ' '
                && l.Contains(label, StringComparison.Ordinal))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));

    [GeneratedRegex(@"^queue\d+ load \d+\.\d\d local \d+/8 remote \d+/20 messages \d+ recipients \d+ active \d+ waiting \d+ accepted/s [\d.]+ delivered/s [\d.]+ deferred/s [\d.]+ bounced/s [\d.]+$")]
    private static partial Regex QueueLine();
}
