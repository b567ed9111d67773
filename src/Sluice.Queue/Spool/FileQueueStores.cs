// The file spool's queues: <Queue.Base>/queue<N>, one FileQueueStore each.
namespace Sluice.Queue.Spool;

public sealed class FileQueueStores(string queueBase, long segmentBytes, TimeProvider time, Action<string> warn) : IQueueStoreFactory
{
    private readonly List<FileQueueStore> _opened = [];

    public string Description => queueBase;

    public IReadOnlyCollection<int> Numbers(IEnumerable<int> configured) => QueueLayout.Numbers(queueBase, configured);

    public IQueueStore Open(int number)
    {
        var store = FileQueueStore.Open(number, QueueLayout.PathOf(queueBase, number), segmentBytes, time, warn);
        lock (_opened) _opened.Add(store);
        return store;
    }

    public (long Commits, long Records) CommitStats
    {
        get
        {
            lock (_opened) return _opened.Aggregate((0L, 0L), (sum, s) => (sum.Item1 + s.CommitStats.Syncs, sum.Item2 + s.CommitStats.Records));
        }
    }

    /// <summary>The stores themselves are disposed with their queues.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
