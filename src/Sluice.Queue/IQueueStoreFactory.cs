// Where a node's queues are kept, chosen by Queue.Store: the file spool under Queue.Base (the embedded
// default) or a PostgreSQL database that several nodes share. The composition root opens each queue
// through it and disposes it after the queues.
using Sluice.Core.Configuration;
using Sluice.Queue.Postgres;
using Sluice.Queue.Spool;

namespace Sluice.Queue;

public interface IQueueStoreFactory : IAsyncDisposable
{
    /// <summary>Where the queues are, for the log: a directory or a database.</summary>
    string Description { get; }

    /// <summary>The configured queue numbers plus any found holding mail that this node should drain.</summary>
    IReadOnlyCollection<int> Numbers(IEnumerable<int> configured);

    /// <summary>Opens and recovers queue <paramref name="number"/>; an IOException says why it cannot be.</summary>
    IQueueStore Open(int number);

    /// <summary>Takes away an emptied queue the server has closed (the Scaler retired it).</summary>
    void Remove(int number);

    /// <summary>Destination limits shared with the other nodes on the same store; null when this node is alone (the file spool).</summary>
    IClusterDestinationLimits? DestinationLimits { get; }

    /// <summary>Every node on the same store, for the cluster views; empty when this node is alone (the file spool).</summary>
    IReadOnlyList<ClusterNode> Cluster { get; }

    /// <summary>Durable commits made and records they carried, over every queue opened (the benchmark's figure).</summary>
    (long Commits, long Records) CommitStats { get; }

    /// <summary>Whether the store takes writes now (GET /readyz): the spool directory takes a file, the database answers.</summary>
    Task<bool> WritableAsync(CancellationToken ct);
}

public static class QueueStores
{
    public static IQueueStoreFactory Open(SluiceOptions options, TimeProvider time, Action<string> log) => options.Queue.Store switch
    {
        QueueOptions.PostgresStore => PostgresQueueDatabase.OpenAsync(options.Queue.ConnectionString!, options.Queue.Node, options.Queue.Lease,
            NodeRoles.Parse(options.Queue.Roles), time, log, CancellationToken.None).GetAwaiter().GetResult(),
        _ => new FileQueueStores(options.QueueBase, options.Queue.SegmentBytes.Bytes, time, log),
    };
}
