// Delivery.Workers in the real process: SMTP delivery in child processes, each with its own open-files
// limit, so outbound sessions go past what the server's own limit allows; a worker killed mid-delivery
// is started again and its delivery repeated; a reload's routes reach the workers; none outlive the server.
using System.Text.RegularExpressions;
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed partial class DeliveryWorkerTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Two_workers_hold_more_sessions_at_once_than_the_servers_own_open_files_limit()
    {
        const int limit = 1000, domains = 1060, perMessage = 530;
        await using var dns = await FanOut.StartDnsAsync(domains);
        await using var mx = new SmtpSink();
        var allHeld = mx.Sessions.WaitForAsync(domains, Wait);
        mx.BeforeDataReply = _ => allHeld;
        await using var sluice = await Instance.StartAsync(limit, c => FanOut.Configure(c, dns, new { Port = mx.Port, Workers = 2 }, domains));
        await sluice.WaitForLogAsync($"limits: open files {limit} (hard {limit})");
        var workers = WorkerPids(sluice);
        Assert.Equal(2, workers.Count);

        for (var first = 0; first < domains; first += perMessage)
            await FanOut.SendAsync(sluice, [.. Enumerable.Range(first, perMessage).Select(FanOut.Recipient)]);

        // Every destination's delivery holds a session at the sink at the same time: more sockets than the server may open.
        await allHeld;
        await mx.WaitForCountAsync(domains, Wait);
        static bool Success(string line) => line.Contains(": success: ", StringComparison.Ordinal);
        await sluice.Process.WaitForLogAsync(l => Success(l) && sluice.Process.Log.Count(Success) >= domains, Wait);
        Assert.True(mx.Sessions.Max > limit, $"at most {mx.Sessions.Max} sessions at once");
        Assert.Equal(domains, mx.Messages.Sum(m => m.Recipients.Count));

        Assert.Equal(0, await sluice.Process.StopAsync());
        foreach (var pid in workers) Assert.False(Directory.Exists($"/proc/{pid}"), $"worker {pid} outlived the server");
    }

    [Fact]
    public async Task A_worker_killed_during_a_delivery_is_started_again_and_the_delivery_is_repeated()
    {
        var firstAttempt = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var sluice = await Instance.StartAsync(c => c["Delivery"] = new { Workers = 1 });
        var worker = Assert.Single(WorkerPids(sluice));
        var attempts = 0;
        // The first attempt is held at the final dot until its worker has been killed; the second is answered.
        sluice.Sink.BeforeDataReply = _ => Interlocked.Increment(ref attempts) == 1 ? HoldForeverAsync(firstAttempt) : Task.CompletedTask;

        await FanOut.SendAsync(sluice, ["someone@remote.test"]);
        await firstAttempt.Task.WaitAsync(Wait);
        System.Diagnostics.Process.GetProcessById(worker).Kill();

        await sluice.WaitForLogAsync($"delivery: worker 1 (pid {worker}) exited with status 137; its 1 open deliveries are deferred");
        await sluice.WaitForLogAsync("stopped before it reported; tried again later");
        await sluice.Process.WaitForLogAsync(l => l.Contains(": success: ", StringComparison.Ordinal), Wait);
        var restarted = Assert.Single(WorkerPids(sluice), p => p != worker);
        Assert.True(Directory.Exists($"/proc/{restarted}"));
        Assert.Contains(sluice.Sink.Messages, m => m.Recipients.SequenceEqual(["someone@remote.test"]));
    }

    [Fact]
    public async Task A_reload_sends_new_routes_to_the_workers()
    {
        await using var second = new SmtpSink();
        await using var sluice = await Instance.StartAsync(c => c["Delivery"] = new { Workers = 2 });
        await FanOut.SendAsync(sluice, ["before@remote.test"]);
        await sluice.Sink.WaitForCountAsync(1, Wait);

        sluice.Config["Routes"] = new Dictionary<string, string> { ["*"] = $"127.0.0.1:{second.Port}" };
        await sluice.WriteConfigAsync();
        var (exit, _, stderr) = await sluice.RunVerbAsync("reload");
        Assert.True(exit == 0, stderr);
        await sluice.WaitForLogAsync("reload: configuration reloaded");
        await FanOut.SendAsync(sluice, ["after@remote.test"]);
        await second.WaitForCountAsync(1, Wait);
        Assert.Equal(["after@remote.test"], Assert.Single(second.Messages).Recipients);
        Assert.Equal(["before@remote.test"], Assert.Single(sluice.Sink.Messages).Recipients);
    }

    [Fact]
    public async Task A_message_bigger_than_a_frame_batch_reaches_the_next_hop_byte_for_byte()
    {
        await using var sluice = await Instance.StartAsync(c => c["Delivery"] = new { Workers = 1 });
        // 8,000 lines of 80 octets: 640 KB, more than the 256 KiB a batch of frames holds, so it is sent on its own.
        var body = string.Concat(Enumerable.Range(0, 8000).Select(i => $"{i:D6} {new string((char)('a' + i % 26), 71)}\r\n"));
        await FanOut.SendAsync(sluice, ["big@remote.test"], body);
        await FanOut.SendAsync(sluice, ["small@remote.test"]);
        await sluice.Sink.WaitForCountAsync(2, Wait);
        var big = Assert.Single(sluice.Sink.Messages, m => m.Recipients.SequenceEqual(["big@remote.test"]));
        Assert.EndsWith("\r\n\r\n" + body, big.Data, StringComparison.Ordinal);
    }

    private static async Task HoldForeverAsync(TaskCompletionSource reached)
    {
        reached.TrySetResult();
        await Task.Delay(Timeout.Infinite);
    }

    /// <summary>The workers' PIDs from their "ready" lines, newest last.</summary>
    private static List<int> WorkerPids(Instance sluice) =>
        [.. sluice.Process.Log.Select(l => ReadyLine().Match(l)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))];

    [GeneratedRegex(@"delivery: worker \d+ \(pid (\d+)\) ready")]
    private static partial Regex ReadyLine();
}
