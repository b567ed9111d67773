using Sluice.Core.Mail;
using Sluice.Queue.Spool;
using Sluice.Testing;

namespace Sluice.Queue.Tests;

public sealed class BalancerTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    private MailQueue Queue(int n) =>
        new(FileQueueStore.Open(n, Path.Combine(_dir.Path, $"queue{n}"), 64L << 20, TimeProvider.System, _ => { }));

    [Fact]
    public async Task Each_message_goes_to_the_least_loaded_queue()
    {
        await using var q1 = Queue(1);
        await using var q2 = Queue(2);
        await using var q3 = Queue(3);
        q1.Load = () => 0.5;
        q2.Load = () => 0.1;
        q3.Load = () => 0.9;
        var balancer = new Balancer([q1, q2, q3]);
        for (int i = 0; i < 5; i++) Assert.Same(q2, balancer.Pick());
        var m = await balancer.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, "x\r\n"u8.ToArray(), CancellationToken.None);
        Assert.Equal(2, m.QueueNumber);
        Assert.True(q2.Announcements.TryRead(out var announced));
        Assert.Equal(m.Id, announced.Id);
    }

    [Fact]
    public async Task Equal_load_goes_to_the_queue_with_fewer_messages_so_idle_queues_fill_evenly()
    {
        await using var q1 = Queue(1);
        await using var q2 = Queue(2);
        var balancer = new Balancer([q1, q2]);
        for (int i = 0; i < 10; i++) await balancer.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, "x\r\n"u8.ToArray(), CancellationToken.None);
        Assert.Equal(5, q1.Store.MessageCount);
        Assert.Equal(5, q2.Store.MessageCount);
    }

    public void Dispose() => _dir.Dispose();
}
