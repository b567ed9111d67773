// Managed memory an idle session keeps (after 220 and EHLO, waiting for the next command), over
// in-memory pipes: the session's own share of what bench/sessions.sh measures as RSS per session.
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Queue;
using Sluice.Receive;

namespace Sluice.Bench;

internal static class IdleFootprint
{
    private static readonly PipeOptions Unbounded = new(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false);
    private static readonly byte[] Ehlo = Encoding.ASCII.GetBytes("EHLO client.bench.test\r\n");

    public static async Task<int> RunAsync(int count)
    {
        var options = new SluiceOptions { Hostname = "bench.sluice.test" };
        options.Queue.Base = Path.GetTempPath();
        var policy = new ReceivePolicy(options);
        var acceptor = new RefusingAcceptor();
        using var stop = new CancellationTokenSource();

        // One session first, so first-use costs (statics, JIT) are not charged to the others.
        var warm = await StartIdleAsync(policy, acceptor, 0, stop.Token);
        var before = Measure();
        var sessions = new List<(Task Run, Pipe ToServer, Pipe ToClient)>(count);
        for (var i = 1; i <= count; i++) sessions.Add(await StartIdleAsync(policy, acceptor, i, stop.Token));
        var after = Measure();

        // The pipes are not part of a real session (a socket's are); count them separately.
        var pipes = MeasurePipesOnly(count);
        var perSession = (after - before) / (double)count;
        Console.WriteLine($"idle sessions: {count}");
        Console.WriteLine($"managed bytes per idle session (session + its two in-memory pipes): {perSession:F0}");
        Console.WriteLine($"of which the two idle in-memory pipes: {pipes:F0}");
        Console.WriteLine($"session without pipes: {perSession - pipes:F0}");

        await stop.CancelAsync();
        foreach (var (_, toServer, _) in sessions.Append(warm)) await toServer.Writer.CompleteAsync();
        foreach (var (run, _, _) in sessions.Append(warm)) await run.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return 0;
    }

    private static async Task<(Task, Pipe, Pipe)> StartIdleAsync(ReceivePolicy policy, IMessageAcceptor acceptor, long id, CancellationToken ct)
    {
        var toServer = new Pipe(Unbounded);
        var toClient = new Pipe(Unbounded);
        var session = new SmtpSession(policy, acceptor, TimeProvider.System, new IPEndPoint(IPAddress.Loopback, 40000), id);
        var run = session.RunAsync(new Duplex(toServer.Reader, toClient.Writer), ct);
        await toServer.Writer.WriteAsync(Ehlo, ct);
        // Read replies until the EHLO's last line: then the session waits for its next command.
        while (true)
        {
            var result = await toClient.Reader.ReadAsync(ct);
            var text = Encoding.ASCII.GetString(result.Buffer);
            var done = text.EndsWith("250 ENHANCEDSTATUSCODES\r\n", StringComparison.Ordinal);
            toClient.Reader.AdvanceTo(done ? result.Buffer.End : result.Buffer.Start, result.Buffer.End);
            if (done) return (run, toServer, toClient);
            if (result.IsCompleted) throw new InvalidOperationException($"session ended: {text}");
        }
    }

    private static double MeasurePipesOnly(int count)
    {
        var before = Measure();
        var pipes = new List<Pipe>(count * 2);
        for (var i = 0; i < count * 2; i++) pipes.Add(new Pipe(Unbounded));
        var after = Measure();
        GC.KeepAlive(pipes);
        return (after - before) / (double)count;
    }

    private static long Measure()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private sealed record Duplex(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    private sealed class RefusingAcceptor : IMessageAcceptor
    {
        public Task<QueuedMessage> AcceptAsync(Sluice.Core.Mail.Envelope envelope, ReadOnlyMemory<byte> body, CancellationToken ct) =>
            throw new InvalidOperationException("idle sessions send no mail");
    }
}
