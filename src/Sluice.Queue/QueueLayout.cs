// Where queues live: <Queue.Base>/queue<N> (indimail's QUEUE_BASE and queue numbering).
namespace Sluice.Queue;

public static class QueueLayout
{
    public static string PathOf(string queueBase, int number) => Path.Combine(queueBase, $"queue{number}");

    /// <summary>The configured queue numbers plus any queueN on disk, so a queue left from a larger count is not stranded.</summary>
    public static SortedSet<int> Numbers(string queueBase, IEnumerable<int> configured)
    {
        var numbers = new SortedSet<int>(configured);
        if (Directory.Exists(queueBase))
            foreach (var dir in Directory.EnumerateDirectories(queueBase, "queue*"))
                if (int.TryParse(Path.GetFileName(dir).AsSpan(5), out var n) && n >= 0) numbers.Add(n);
        return numbers;
    }
}
