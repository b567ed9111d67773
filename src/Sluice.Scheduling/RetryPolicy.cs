// When a deferred recipient is tried next, and when it has been queued too long (Retry options).
// Jitter of ±10 % keeps a burst of deferrals from all coming due in the same second.
using Sluice.Core.Configuration;

namespace Sluice.Scheduling;

public sealed class RetryPolicy(RetryOptions options)
{
    private volatile RetryOptions _options = options;

    /// <param name="attempts">Attempts made so far, this one included (1 after the first).</param>
    public TimeSpan Delay(int attempts)
    {
        var schedule = _options.Schedule;
        var step = schedule[Math.Clamp(attempts - 1, 0, schedule.Count - 1)];
        return step * (0.9 + (Random.Shared.NextDouble() * 0.2));
    }

    public bool Expired(DateTimeOffset receivedAt, DateTimeOffset now) => now - receivedAt >= _options.MaxQueueLifetime;

    public TimeSpan MaxQueueLifetime => _options.MaxQueueLifetime;

    /// <summary>True when a message received at <paramref name="receivedAt"/> is old enough for a delay warning (if they are on).</summary>
    public bool DueForDelayWarning(DateTimeOffset receivedAt, DateTimeOffset now) =>
        _options.DelayWarning is { } warning && now - receivedAt >= warning;

    /// <summary>A reloaded configuration's schedule and lifetime, from the next deferral or expiry check on.</summary>
    public void Replace(RetryOptions reloaded) => _options = reloaded;
}
