// Blocking file work runs on the workers' own threads, its result or exception comes back through the task,
// and a directory's fsync group gives every caller a completed fsync (or the error of its own attempt).
using Sluice.Core.IO;

namespace Sluice.Core.Tests.IO;

public sealed class BlockingWorkersTests
{
    [Fact]
    public async Task Work_runs_off_the_thread_pool_and_its_result_and_exception_come_back()
    {
        using var workers = new BlockingWorkers("test", 2);
        Assert.Equal((false, "test"), await workers.RunAsync(() => (Thread.CurrentThread.IsThreadPoolThread, Thread.CurrentThread.Name![..4])));
        var e = await Assert.ThrowsAsync<IOException>(() => workers.RunAsync<int>(() => throw new IOException("disk gone")));
        Assert.Equal("disk gone", e.Message);
    }

    [Fact]
    public async Task As_many_pieces_of_work_block_at_once_as_there_are_threads()
    {
        using var workers = new BlockingWorkers("test", 3);
        using var inside = new CountdownEvent(3);
        using var release = new ManualResetEventSlim();
        var blocked = Enumerable.Range(0, 3).Select(_ => workers.RunAsync(() => { inside.Signal(); release.Wait(); return 1; })).ToArray();
        // All three are inside at once: none waits for another to finish.
        Assert.True(await Task.Run(() => inside.Wait(TimeSpan.FromSeconds(10))));
        release.Set();
        Assert.Equal(3, (await Task.WhenAll(blocked)).Sum());
    }

    [Fact]
    public async Task Concurrent_syncs_of_a_directory_all_complete_and_a_failing_one_throws_to_each_caller()
    {
        var dir = Directory.CreateTempSubdirectory("sluice-dirsync").FullName;
        try
        {
            var group = new DirectorySyncGroup();
            // None is left waiting for an fsync that never comes.
            var all = Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(() => group.Sync(dir))));
            await all.WaitAsync(TimeSpan.FromSeconds(10));
            var missing = Path.Combine(dir, "gone");
            var failures = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => Record.Exception(() => group.Sync(missing)))));
            Assert.All(failures, f => Assert.IsType<IOException>(f));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
