// A delivery worker that keeps dying at once is started less and less often; one that lived a while is started again at once.
using Sluice.Delivery.Workers;

namespace Sluice.Delivery.Tests;

public sealed class WorkerRestartDelayTests
{
    [Fact]
    public void Short_lives_double_the_wait_up_to_a_minute_and_a_long_life_brings_it_back_to_a_second()
    {
        var delay = new WorkerRestartDelay();
        var waits = Enumerable.Range(0, 8).Select(_ => delay.After(TimeSpan.FromSeconds(2)).TotalSeconds).ToArray();
        Assert.Equal([1, 2, 4, 8, 16, 32, 60, 60], waits);

        Assert.Equal(TimeSpan.FromSeconds(1), delay.After(TimeSpan.FromMinutes(5)));
        Assert.Equal(TimeSpan.FromSeconds(2), delay.After(TimeSpan.Zero));
    }
}
