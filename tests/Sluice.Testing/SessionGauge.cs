// Counts what is going on at once (sessions at a sink, transactions held) and the most ever seen,
// so tests can assert a limit was never passed and await a level instead of sleeping.
namespace Sluice.Testing;

public sealed class SessionGauge
{
    private readonly Lock _lock = new();
    private readonly List<(Func<int, bool> Reached, TaskCompletionSource Done)> _waiters = [];

    public int Current { get; private set; }
    public int Max { get; private set; }
    /// <summary>Every Enter so far.</summary>
    public int Total { get; private set; }

    public void Enter()
    {
        lock (_lock)
        {
            Current++;
            Total++;
            if (Current > Max) Max = Current;
            WakeWaiters();
        }
    }

    public void Leave()
    {
        lock (_lock)
        {
            Current--;
            WakeWaiters();
        }
    }

    /// <summary>Completes once <see cref="Current"/> has reached <paramref name="level"/>.</summary>
    public Task WaitForAsync(int level, TimeSpan timeout) => WaitUntilAsync(c => c >= level, $"expected {level}", timeout);

    /// <summary>Completes once <see cref="Current"/> is down to <paramref name="level"/> or below.</summary>
    public Task WaitForAtMostAsync(int level, TimeSpan timeout) => WaitUntilAsync(c => c <= level, $"expected at most {level}", timeout);

    private async Task WaitUntilAsync(Func<int, bool> reached, string expected, TimeSpan timeout)
    {
        TaskCompletionSource done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (reached(Current)) return;
            _waiters.Add((reached, done));
        }
        try
        {
            await done.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"gauge at {Current} (max {Max}), {expected} within {timeout}");
        }
    }

    private void WakeWaiters()
    {
        foreach (var w in _waiters.Where(w => w.Reached(Current)).ToList())
        {
            w.Done.TrySetResult();
            _waiters.Remove(w);
        }
    }
}
