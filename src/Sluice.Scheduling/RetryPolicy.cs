// When a deferred recipient is tried next, and when it has been queued too long (Retry options).
// Jitter of ±10 % keeps a burst of deferrals from all coming due in the same second.
using Sluice.Core.Configuration;

namespace Sluice.Scheduling;

public sealed class RetryPolicy(RetryOptions options)
{
    /// <param name="attempts">Attempts made so far, this one included (1 after the first).</param>
    public TimeSpan Delay(int attempts)
    {
        var step = options.Schedule[Math.Clamp(attempts - 1, 0, options.Schedule.Count - 1)];
        return step * (0.9 + (Random.Shared.NextDouble() * 0.2));
    }

    public bool Expired(DateTimeOffset receivedAt, DateTimeOffset now) => now - receivedAt >= options.MaxQueueLifetime;

    public TimeSpan MaxQueueLifetime => options.MaxQueueLifetime;
}
