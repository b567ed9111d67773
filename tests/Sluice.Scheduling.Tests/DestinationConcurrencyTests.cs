// DestinationConcurrency across queues and channels, seen from the receivers: many domains routed
// to a few real sinks, four queues' schedulers sharing one throttle, hundreds of channel slots.
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Testing;

namespace Sluice.Scheduling.Tests;

public sealed class DestinationConcurrencyTests : SchedulerHarness
{
    private const int RemoteSinks = 20, RemoteLimit = 10, BulkSinks = 2, BulkLimit = 3, DomainsPerSink = 3;
    /// <summary>Messages each sink answers at once before it holds the rest, enough for slow start to open the window fully.</summary>
    private const int AnsweredFirst = 20;
    /// <summary>Beyond what a sink can hold at its limit: these must wait in the queue, not reach it.</summary>
    private const int Extra = 5;

    [Fact]
    public async Task No_destination_passes_its_limit_while_the_total_in_use_is_far_above_one()
    {
        var everywhere = new SessionGauge();
        var held = new SessionGauge();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var remote = Enumerable.Range(0, RemoteSinks).Select(_ => NewSink(everywhere)).ToList();
        var bulk = Enumerable.Range(0, BulkSinks).Select(_ => NewSink(everywhere)).ToList();
        foreach (var sink in remote.Concat(bulk)) sink.BeforeDataReply = HoldAfter(AnsweredFirst, held, release.Task);

        var options = DefaultOptions(TimeSpan.FromDays(1));
        options.Routes.Clear();
        string Domain(string kind, int sink, int i) => $"{kind}{sink}-{i}.test";
        for (int s = 0; s < RemoteSinks; s++)
            for (int i = 0; i < DomainsPerSink; i++) options.Routes[Domain("r", s, i)] = $"127.0.0.1:{remote[s].Port}";
        for (int s = 0; s < BulkSinks; s++)
            for (int i = 0; i < DomainsPerSink; i++) options.Routes[Domain("b", s, i)] = $"127.0.0.1:{bulk[s].Port}";
        options.Channels =
        [
            new() { Name = "local", Transport = ChannelOptions.MaildirTransport, Domains = ["localhost"], Concurrency = 64 },
            new() { Name = "remote", Transport = ChannelOptions.SmtpTransport, Concurrency = 250, DestinationConcurrency = RemoteLimit },
            new() { Name = "bulk", Transport = ChannelOptions.SmtpTransport, Concurrency = 100, DestinationConcurrency = BulkLimit,
                    Domains = [.. Enumerable.Range(0, BulkSinks).SelectMany(s => Enumerable.Range(0, DomainsPerSink).Select(i => Domain("b", s, i)))] },
        ];
        const int queues = 4;
        Open(options, queues);

        // Every destination gets its mail spread over its domains and over all queues.
        var accepts = new List<Task>();
        void Send(string kind, int sinks, int limit)
        {
            for (int s = 0; s < sinks; s++)
                for (int n = 0; n < AnsweredFirst + limit + Extra; n++)
                    accepts.Add(Accept(new Envelope("sender@localhost", [$"u{n}@{Domain(kind, s, n % DomainsPerSink)}"]), queue: (s + n) % queues));
        }
        Send("r", RemoteSinks, RemoteLimit);
        Send("b", BulkSinks, BulkLimit);
        await Task.WhenAll(accepts);
        Deliver();

        // Each destination fills its window up to its limit and no further; all of them at once.
        const int allLimits = (RemoteSinks * RemoteLimit) + (BulkSinks * BulkLimit);
        await held.WaitForAsync(allLimits, TimeSpan.FromSeconds(30));
        Assert.All(remote, s => Assert.InRange(s.Sessions.Max, 1, RemoteLimit));
        Assert.All(bulk, s => Assert.InRange(s.Sessions.Max, 1, BulkLimit));
        Assert.InRange(everywhere.Max, allLimits, allLimits);

        release.SetResult();
        foreach (var s in remote) await s.WaitForCountAsync(AnsweredFirst + RemoteLimit + Extra, TimeSpan.FromSeconds(30));
        foreach (var s in bulk) await s.WaitForCountAsync(AnsweredFirst + BulkLimit + Extra, TimeSpan.FromSeconds(30));
        Assert.All(remote, s => Assert.InRange(s.Sessions.Max, 1, RemoteLimit));
        Assert.All(bulk, s => Assert.InRange(s.Sessions.Max, 1, BulkLimit));
        Assert.True(everywhere.Max > 10 * RemoteLimit, $"{everywhere.Max} sessions at once over all sinks");
    }

    /// <summary>Answers the first <paramref name="answered"/> messages at once, then holds each until <paramref name="release"/>.</summary>
    private static Func<SmtpSink.Received, Task> HoldAfter(int answered, SessionGauge held, Task release)
    {
        var seen = 0;
        return async _ =>
        {
            if (Interlocked.Increment(ref seen) <= answered) return;
            held.Enter();
            try { await release; }
            finally { held.Leave(); }
        };
    }
}
