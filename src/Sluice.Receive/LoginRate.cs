// Messages per AUTH login in the last hour (Smtp.LoginRatePerHour): a sliding window of MAIL times in
// memory, shared by every session and carried over a reload; the limit is the caller's, so a reload changes it.
namespace Sluice.Receive;

public sealed class LoginRate(TimeProvider time)
{
    private static readonly TimeSpan Window = TimeSpan.FromHours(1);
    private readonly Dictionary<string, Queue<DateTimeOffset>> _recent = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Counts one message for <paramref name="login"/>; false (and not counted) when it already sent <paramref name="perHour"/> in the hour.</summary>
    public bool TryTake(string login, int perHour)
    {
        if (perHour <= 0) return true;
        var now = time.GetUtcNow();
        lock (_recent)
        {
            if (!_recent.TryGetValue(login, out var times)) _recent[login] = times = new();
            while (times.Count > 0 && now - times.Peek() >= Window) times.Dequeue();
            if (times.Count >= perHour) return false;
            times.Enqueue(now);
            return true;
        }
    }
}
