// The file spool's queues: <Queue.Base>/queue<N>, one FileQueueStore each (the embedded default store).
namespace Sluice.Queue.Spool;

public sealed class FileQueueStores(string queueBase, long segmentBytes, TimeProvider time, Action<string> warn) : IQueueStoreFactory
{
    private readonly List<FileQueueStore> _opened = [];
    /// <summary>Commits of the queues removed since start, so the totals stay whole.</summary>
    private (long Commits, long Records) _removed;

    public string Description => queueBase;

    public IClusterDestinationLimits? DestinationLimits => null;

    public IReadOnlyList<ClusterNode> Cluster => [];

    /// <summary>At start: also finishes any removal a crash interrupted.</summary>
    public IReadOnlyCollection<int> Numbers(IEnumerable<int> configured)
    {
        QueueLayout.SweepRetired(queueBase);
        return QueueLayout.Numbers(queueBase, configured);
    }

    public IQueueStore Open(int number)
    {
        var store = FileQueueStore.Open(number, QueueLayout.PathOf(queueBase, number), segmentBytes, time, warn);
        lock (_opened) _opened.Add(store);
        return store;
    }

    public void Remove(int number)
    {
        QueueLayout.Remove(queueBase, number);
        lock (_opened)
            foreach (var store in _opened.Where(s => s.Number == number).ToList())
            {
                _removed = (_removed.Commits + store.CommitStats.Syncs, _removed.Records + store.CommitStats.Records);
                _opened.Remove(store);
            }
    }

    public (long Commits, long Records) CommitStats
    {
        get
        {
            lock (_opened) return _opened.Aggregate(_removed, (sum, s) => (sum.Commits + s.CommitStats.Syncs, sum.Records + s.CommitStats.Records));
        }
    }

    /// <summary>A file created in Queue.Base and removed again: a read-only or vanished spool fails it.</summary>
    public Task<bool> WritableAsync(CancellationToken ct)
    {
        try
        {
            using (new FileStream(Path.Combine(queueBase, $".writable.{Guid.NewGuid():N}"), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1,
                FileOptions.DeleteOnClose)) { }
            return Task.FromResult(true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Task.FromResult(false);
        }
    }

    /// <summary>The stores themselves are disposed with their queues.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
