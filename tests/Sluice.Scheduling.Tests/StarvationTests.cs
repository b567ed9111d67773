// Issue 4's starvation test: 50,000 bulk messages stuck at one slow destination (it holds every
// transaction), then a few transactional ones, which must still be delivered within seconds.
using System.Diagnostics;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Testing;
using Xunit.Abstractions;

namespace Sluice.Scheduling.Tests;

public sealed class StarvationTests(ITestOutputHelper output) : SchedulerHarness
{
    private const int Bulk = 50_000, BulkLimit = 4, Transactional = 5, QueueCount = 2;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    [Theory]
    [InlineData("tx.test", false)]    // a channel of higher Priority, to another destination
    [InlineData("other.test", false)] // simply another destination of the bulk channel
    [InlineData("tx.test", true)]     // the bulk destination held back by its rate, not its connections
    public async Task Transactional_mail_is_delivered_within_seconds_behind_a_bulk_backlog(string txDomain, bool paced)
    {
        var held = new SessionGauge();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var bulkSink = NewSink();
        var txSink = NewSink();
        bulkSink.BeforeDataReply = async _ =>
        {
            held.Enter();
            try { await release.Task; }
            finally { held.Leave(); }
        };
        var options = DefaultOptions(TimeSpan.FromDays(1));
        options.Routes.Clear();
        options.Routes["bulk.test"] = $"127.0.0.1:{bulkSink.Port}";
        options.Routes["other.test"] = options.Routes["tx.test"] = $"127.0.0.1:{txSink.Port}";
        options.Channels =
        [
            new() { Name = "local", Transport = ChannelOptions.MaildirTransport, Domains = ["localhost"], Concurrency = 16 },
            new() { Name = "remote", Transport = ChannelOptions.SmtpTransport, Concurrency = 100 },
            new() { Name = "bulk", Transport = ChannelOptions.SmtpTransport, Domains = ["bulk.test", "other.test"], Concurrency = 100,
                    DestinationConcurrency = BulkLimit, DestinationRatePerMinute = paced ? 60 : 0 },
            new() { Name = "transactional", Transport = ChannelOptions.SmtpTransport, Domains = ["tx.test"], Concurrency = 20, Priority = 10 },
        ];
        Open(options, QueueCount);
        Deliver();

        // Straight into the spools, all at once: group commit makes 50,000 a few batches.
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Bulk).Select(i => Accept(new Envelope("news@localhost", [$"u{i}@bulk.test"]), queue: i % QueueCount)));
        var spooled = clock.Elapsed;
        var inFlight = paced ? 1 : BulkLimit; // a rate of 60 a minute has a burst of one, and the clock stands still
        await held.WaitForAsync(inFlight, TimeSpan.FromSeconds(15));

        clock.Restart();
        await Task.WhenAll(Enumerable.Range(0, Transactional).Select(i => Accept(new Envelope("shop@localhost", [$"c{i}@{txDomain}"]), queue: i % QueueCount)));
        await txSink.WaitForCountAsync(Transactional, TimeSpan.FromSeconds(15));
        var latency = clock.Elapsed;
        output.WriteLine($"{Bulk} bulk messages spooled in {spooled.TotalMilliseconds:0} ms; {Transactional} transactional delivered {latency.TotalMilliseconds:0} ms after acceptance");

        Assert.True(latency < Bound, $"transactional mail took {latency} behind the bulk backlog");
        Assert.Equal(inFlight, held.Current);
        Assert.Equal(inFlight, bulkSink.Sessions.Max);
        Assert.Equal(inFlight, Throttle.InUse($"127.0.0.1:{bulkSink.Port}"));
        Assert.Empty(bulkSink.Messages);
        release.SetResult();
    }
}
