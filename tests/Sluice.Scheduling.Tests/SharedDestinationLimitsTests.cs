// Two nodes' throttles on one real PostgreSQL queue database: together they never run more
// deliveries to a destination than its DestinationConcurrency, a node's idle slot goes back to the
// cluster after the hold, and the rate is one pace for both.
using Sluice.Core.Configuration;
using Sluice.Queue.Postgres;
using Sluice.Testing;

namespace Sluice.Scheduling.Tests;

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "postgres";
}

[Collection(PostgresCollection.Name)]
public sealed class SharedDestinationLimitsTests(PostgresServer server)
{
    private const string Destination = "x.test";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>One node: its queue database and the throttle on it; CapacityAvailable completes <see cref="Capacity"/>.</summary>
    private sealed class Node : IAsyncDisposable
    {
        private PostgresQueueDatabase _db = null!;
        private TaskCompletionSource _capacity = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public DestinationThrottle Throttle { get; private set; } = null!;

        public static async Task<Node> StartAsync(string db, string name, TimeSpan spareHold)
        {
            var node = new Node { _db = await PostgresQueueDatabase.OpenAsync(db, name, TimeSpan.FromSeconds(30), NodeRole.Both, TimeProvider.System, _ => { }, CancellationToken.None) };
            node.Throttle = new DestinationThrottle(TimeProvider.System, _ => { }, node._db.DestinationLimits, spareHold);
            node.Throttle.CapacityAvailable += _ => Interlocked.Exchange(ref node._capacity, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            return node;
        }

        /// <summary>Completes at the next announcement of capacity; take it before asking, so none is missed.</summary>
        public Task Capacity => Volatile.Read(ref _capacity).Task;

        public async Task AcquireAsync(string destination, ChannelOptions channel)
        {
            while (true)
            {
                var capacity = Capacity;
                if (Throttle.TryAcquire(destination, channel) == Admission.Granted) return;
                await capacity.WaitAsync(Patience);
            }
        }

        public async ValueTask DisposeAsync()
        {
            Throttle.Dispose();
            await _db.DisposeAsync();
        }
    }

    [Fact]
    public async Task Two_nodes_together_never_exceed_the_destination_limit()
    {
        var db = await server.CreateDatabaseAsync();
        var channel = new ChannelOptions { Name = "remote", DestinationConcurrency = 3, InitialDestinationConcurrency = 3 };
        await using var a = await Node.StartAsync(db, "a", TimeSpan.FromMilliseconds(20));
        await using var b = await Node.StartAsync(db, "b", TimeSpan.FromMilliseconds(20));
        int inUse = 0, most = 0, done = 0;
        async Task Deliver(Node node)
        {
            await node.AcquireAsync(Destination, channel);
            var now = Interlocked.Increment(ref inUse);
            InterlockedMax(ref most, now);
            await Task.Yield(); // a delivery in progress while the other node asks
            Interlocked.Decrement(ref inUse);
            node.Throttle.Release(Destination, channel, DestinationOutcome.Reached);
            Interlocked.Increment(ref done);
        }
        await Task.WhenAll(Enumerable.Range(0, 120).Select(i => Task.Run(() => Deliver(i % 2 == 0 ? a : b)))).WaitAsync(Patience * 2);
        Assert.Equal(120, done);
        Assert.InRange(most, 1, 3);
    }

    [Fact]
    public async Task A_slot_left_idle_returns_to_the_cluster_after_the_hold()
    {
        var db = await server.CreateDatabaseAsync();
        var channel = new ChannelOptions { Name = "remote", DestinationConcurrency = 1, InitialDestinationConcurrency = 1 };
        await using var a = await Node.StartAsync(db, "a", TimeSpan.FromMilliseconds(300));
        await using var b = await Node.StartAsync(db, "b", TimeSpan.FromMilliseconds(300));
        await a.AcquireAsync(Destination, channel);
        // The clock starts before the hold does, so a stall between these lines cannot shorten what B is seen to wait.
        var started = DateTimeOffset.UtcNow;
        a.Throttle.Release(Destination, channel, DestinationOutcome.Reached);
        // A holds the only slot as a spare (its connection may still be open): B waits until the hold is over.
        await b.AcquireAsync(Destination, channel).WaitAsync(Patience);
        Assert.True(DateTimeOffset.UtcNow - started >= TimeSpan.FromMilliseconds(250), "B got the slot while A could still hold an idle connection");
        Assert.Equal(Admission.Busy, a.Throttle.TryAcquire(Destination, channel));
    }

    [Fact]
    public async Task The_rate_is_one_pace_for_both_nodes()
    {
        var db = await server.CreateDatabaseAsync();
        // 120 a minute: two a second, a burst of two.
        var channel = new ChannelOptions { Name = "remote", DestinationConcurrency = 10, DestinationRatePerMinute = 120 };
        await using var a = await Node.StartAsync(db, "a", TimeSpan.FromSeconds(5));
        await using var b = await Node.StartAsync(db, "b", TimeSpan.FromSeconds(5));
        var started = DateTimeOffset.UtcNow;
        async Task Deliver(Node node)
        {
            await node.AcquireAsync(Destination, channel);
            node.Throttle.Release(Destination, channel, DestinationOutcome.Reached);
        }
        await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Deliver(i % 2 == 0 ? a : b))).WaitAsync(Patience);
        // Six turns at two a second with a burst of two: the last is due 2 s after the first, whichever node takes it.
        Assert.True(DateTimeOffset.UtcNow - started >= TimeSpan.FromSeconds(1.9), $"six turns in {DateTimeOffset.UtcNow - started}");
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
    }
}
