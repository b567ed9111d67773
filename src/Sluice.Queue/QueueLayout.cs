// Where queues live: <Queue.Base>/queue<N> (indimail's QUEUE_BASE and queue numbering).
namespace Sluice.Queue;

public static class QueueLayout
{
    private const string RetiredPrefix = "retired-queue";

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

    /// <summary>
    /// Removes an emptied, closed queue: renamed out of the queueN names first (one atomic step, made durable), so a
    /// crash part way through the deletion leaves a directory no start opens as a queue, and no half-removed queueN.
    /// </summary>
    public static void Remove(string queueBase, int number)
    {
        var gone = Path.Combine(queueBase, $"{RetiredPrefix}{number}-{Environment.TickCount64}");
        Directory.Move(PathOf(queueBase, number), gone);
        Sluice.Core.IO.DurableFile.SyncDirectory(queueBase);
        Directory.Delete(gone, recursive: true);
    }

    /// <summary>Finishes removals a crash interrupted (what <see cref="Remove"/> renamed holds no live mail).</summary>
    public static void SweepRetired(string queueBase)
    {
        if (!Directory.Exists(queueBase)) return;
        foreach (var dir in Directory.EnumerateDirectories(queueBase, RetiredPrefix + "*")) Directory.Delete(dir, recursive: true);
    }
}
