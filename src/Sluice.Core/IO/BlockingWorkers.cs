// Blocking file work (writes, fsyncs, renames) on threads of its own. A disk that takes a millisecond per fsync
// then holds these threads, never the thread pool's workers that run SMTP sessions: the pool adds threads only
// slowly when its workers block, and sessions queued behind them stall (bench/local.sh measured it).
namespace Sluice.Core.IO;

public sealed class BlockingWorkers : IDisposable
{
    // Not BlockingCollection: its wait spins in sched_yield before it sleeps, 17.7% of Sluice's samples in a
    // local delivery profile with 16 workers. Monitor.Wait sleeps at once.
    private readonly Queue<Action> _work = new();
    private readonly Lazy<Thread[]> _threads;
    private bool _closed;

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
        lock (_work)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            _work.Enqueue(() =>
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
            Monitor.Pulse(_work);
        }
        return done.Task;
    }

    private void Run()
    {
        while (true)
        {
            Action work;
            lock (_work)
            {
                while (_work.Count == 0)
                {
                    if (_closed) return;
                    Monitor.Wait(_work);
                }
                work = _work.Dequeue();
            }
            work();
        }
    }

    /// <summary>The threads finish the work already given, then end.</summary>
    public void Dispose()
    {
        lock (_work)
        {
            _closed = true;
            Monitor.PulseAll(_work);
        }
    }
}
