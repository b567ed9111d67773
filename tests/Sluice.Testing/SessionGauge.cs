// Counts what is going on at once (sessions at a sink, transactions held) and the most ever seen,
// so tests can assert a limit was never passed and await a level instead of sleeping.
namespace Sluice.Testing;

public sealed class SessionGauge
{
    private readonly Lock _lock = new();
    private readonly List<(int Level, TaskCompletionSource Done)> _waiters = [];

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
            foreach (var w in _waiters.Where(w => Current >= w.Level).ToList())
            {
                w.Done.TrySetResult();
                _waiters.Remove(w);
            }
        }
    }

    public void Leave()
    {
        lock (_lock) Current--;
    }

    /// <summary>Completes once <see cref="Current"/> has reached <paramref name="level"/>.</summary>
    public async Task WaitForAsync(int level, TimeSpan timeout)
    {
        TaskCompletionSource done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (Current >= level) return;
            _waiters.Add((level, done));
        }
        try
        {
            await done.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"gauge at {Current} (max {Max}), expected {level} within {timeout}");
        }
    }
}
