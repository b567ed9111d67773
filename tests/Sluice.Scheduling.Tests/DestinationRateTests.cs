// DestinationRatePerMinute seen from the receiver over simulated minutes: three queues with plenty
// of mail for one destination, the clock advanced step by step, arrivals stamped with the fake time.
using Sluice.Core.Mail;

namespace Sluice.Scheduling.Tests;

public sealed class DestinationRateTests : SchedulerHarness
{
    private const int Rate = 600;
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task DestinationRatePerMinute_holds_within_5_percent_over_any_simulated_minute()
    {
        var options = DefaultOptions(TimeSpan.FromDays(1));
        var remote = options.Channels.Single(c => c.Name == "remote");
        remote.DestinationRatePerMinute = Rate;
        remote.DestinationConcurrency = 20;
        var arrivals = new List<DateTimeOffset>();
        Sink.BeforeDataReply = _ =>
        {
            lock (arrivals) arrivals.Add(Time.GetUtcNow());
            return Task.CompletedTask;
        };
        const int queues = 3;
        Open(options, queues);
        // Many domains, all routed to the one sink: one destination. More mail than 90 s can carry.
        var accepts = Enumerable.Range(0, 2 * Rate).Select(n => Accept(new Envelope("sender@localhost", [$"u{n}@d{n % 30}.test"]), queue: n % queues));
        await Task.WhenAll(accepts);

        var start = Time.GetUtcNow();
        Deliver();
        var steps = (int)(1.5 * Minute / Step);
        for (int step = 1; step <= steps; step++)
        {
            Time.Advance(Step);
            // Each step, every turn the pace has given so far (a burst, then one per 100 ms) reaches
            // the sink before the clock moves on: no turn is lost to a test that runs ahead.
            var turns = DestinationPace.Burst(Rate) + (step * Step.Ticks * Rate / Minute.Ticks);
            await Sink.WaitForCountAsync((int)turns, TimeSpan.FromSeconds(10));
        }
        var end = Time.GetUtcNow();

        DateTimeOffset[] at;
        lock (arrivals) at = [.. arrivals.Order()];
        var firstMinute = at.Count(t => t < start + Minute);
        Assert.InRange(firstMinute, 0.95 * Rate, 1.05 * Rate);
        // Every minute that ends before the last step, starting at any arrival: never more than 5 % over.
        var busiest = at.Where(t => t + Minute <= end).Max(t => at.Count(u => u >= t && u < t + Minute));
        Assert.InRange(busiest, 0.95 * Rate, 1.05 * Rate);
    }
}
