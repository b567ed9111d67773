// Blocking file work (writes, fsyncs, renames) on threads of its own. A disk that takes a millisecond per fsync
// then holds these threads, never the thread pool's workers that run SMTP sessions: the pool adds threads only
// slowly when its workers block, and sessions queued behind them stall (bench/local.sh measured it).
using System.Collections.Concurrent;

namespace Sluice.Core.IO;

public sealed class BlockingWorkers : IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly Lazy<Thread[]> _threads;

    /// <param name="threads">How many pieces of work may block at once.</param>
    public BlockingWorkers(string name, int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        // Started on first use: a server with no local delivery keeps none.
        _threads = new Lazy<Thread[]>(() => [.. Enumerable.Range(0, threads).Select(i =>
        {
            var thread = new Thread(Run) { IsBackground = true, Name = $"{name} {i}" };
            thread.Start();
            return thread;
        })]);
    }

    /// <summary>Runs <paramref name="work"/> on one of the threads; its exception, if any, comes out of the task.</summary>
    public Task<T> RunAsync<T>(Func<T> work)
    {
        _ = _threads.Value;
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _work.Add(() =>
        {
            try
            {
                done.SetResult(work());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        return done.Task;
    }

    private void Run()
    {
        foreach (var work in _work.GetConsumingEnumerable()) work();
    }

    public void Dispose() => _work.CompleteAdding();
}
