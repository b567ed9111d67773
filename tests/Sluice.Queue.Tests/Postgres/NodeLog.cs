namespace Sluice.Queue.Tests.Postgres;

// What the nodes under test log. They log from their own tasks (heartbeat, claims, listener) while the test
// reads, so every read is of a copy taken under the lock; enumerating the live list can throw.
public sealed class NodeLog
{
    private readonly List<string> _lines = [];

    public void Write(string line) { lock (_lines) _lines.Add(line); }

    public string[] Lines { get { lock (_lines) return [.. _lines]; } }

    public bool Any(string fragment) => Lines.Any(l => l.Contains(fragment, StringComparison.Ordinal));
}
