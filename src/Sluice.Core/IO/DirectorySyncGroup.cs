// Group commit for directory fsyncs: a rename waits for the first fsync of its directory that starts after it,
// so renames landing in one directory at once share one fsync instead of queueing one each behind the journal.
namespace Sluice.Core.IO;

public sealed class DirectorySyncGroup
{
    private sealed class Directory
    {
        public long Requested, Synced;
        public bool Running;
    }

    private readonly Dictionary<string, Directory> _directories = new(StringComparer.Ordinal);

    /// <summary>Returns once an fsync of <paramref name="path"/> that began after this call has completed. Blocks.</summary>
    public void Sync(string path)
    {
        Directory d;
        lock (_directories)
            if (!_directories.TryGetValue(path, out d!)) _directories[path] = d = new Directory();
        long covers;
        lock (d)
        {
            var ticket = ++d.Requested;
            while (true)
            {
                if (d.Synced >= ticket) return;
                if (!d.Running) break;
                Monitor.Wait(d);
            }
            d.Running = true;
            covers = d.Requested; // every rename that asked so far happened before this fsync starts
        }
        try
        {
            DurableFile.SyncDirectory(path);
            lock (d) d.Synced = Math.Max(d.Synced, covers);
        }
        finally
        {
            // On failure the waiters try again themselves, each getting its own error if the disk still fails.
            lock (d)
            {
                d.Running = false;
                Monitor.PulseAll(d);
            }
        }
    }
}
