// Connections in use per destination, shared by every queue's scheduler, so that a receiver
// never sees more than DestinationConcurrency connections from us whichever queue mail sits in.
namespace Sluice.Scheduling;

public sealed class DestinationThrottle
{
    private readonly Dictionary<string, int> _inUse = new(StringComparer.OrdinalIgnoreCase);
    private readonly Lock _lock = new();

    /// <summary>Raised after a slot is given back, so schedulers holding work for it can start.</summary>
    public event Action? SlotFreed;

    public bool TryAcquire(string destination, int limit)
    {
        lock (_lock)
        {
            var n = _inUse.GetValueOrDefault(destination);
            if (n >= limit) return false;
            _inUse[destination] = n + 1;
            return true;
        }
    }

    public void Release(string destination)
    {
        lock (_lock)
        {
            if (_inUse.TryGetValue(destination, out var n) && n > 1) _inUse[destination] = n - 1;
            else _inUse.Remove(destination);
        }
        SlotFreed?.Invoke();
    }

    public int InUse(string destination)
    {
        lock (_lock) return _inUse.GetValueOrDefault(destination);
    }
}
