// `sluice queue stat` (qmail-qstat): messages and pending recipients per queue and channel, read
// from the spool (or the queue database) without disturbing a running server; and any damaged
// spool records moved aside.
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Queue;
using Sluice.Queue.Postgres;
using Sluice.Queue.Spool;
using Sluice.Scheduling;

namespace Sluice.Operate;

public static class QueueStat
{
    public static async Task<string> RenderAsync(SluiceOptions options, Action<string> warn, CancellationToken ct)
    {
        var counts = options.Queue.Store == QueueOptions.PostgresStore
            ? (await PostgresQueueCounts.ReadAsync(options.Queue.ConnectionString!, ct).ConfigureAwait(false)).Select(c => (Name: c.Key, Number: (int?)null, Counts: c.Value)).ToList()
            : SpoolCounts(options, warn);
        var channels = new ChannelMap(options.Channels);
        var total = options.Channels.ToDictionary(c => c.Name, _ => 0);
        var text = new StringBuilder();
        foreach (var (name, number, queue) in counts)
        {
            var perChannel = options.Channels.ToDictionary(c => c.Name, _ => 0);
            foreach (var (domain, pending) in queue.PendingByDomain) perChannel[channels.For(domain).Name] += pending;
            foreach (var (k, v) in perChannel) total[k] += v;
            text.AppendLine(Line(name, queue.Messages, perChannel));
            if (number is not { } n) continue;
            // Never silent: a damaged record copied aside at start stays listed until the operator removes it.
            foreach (var bad in FileQueueStore.CorruptEntries(QueueLayout.PathOf(options.QueueBase, n)))
                text.AppendLine($"{name}: corrupt: {bad.FullName} ({bad.Length} bytes copied aside from a damaged spool record)");
        }
        text.AppendLine(Line("total", counts.Sum(q => q.Counts.Messages), total));
        return text.ToString();
    }

    /// <summary>Each queue of the spool: its name, its number (for its directory), its counts.</summary>
    private static List<(string Name, int? Number, QueueCounts Counts)> SpoolCounts(SluiceOptions options, Action<string> warn)
    {
        var counts = new List<(string, int?, QueueCounts)>();
        foreach (var number in QueueLayout.Numbers(options.QueueBase, Enumerable.Range(options.Queue.Start, options.Queue.Count)))
        {
            var queue = new QueueCounts();
            counts.Add(($"queue{number}", number, queue));
            foreach (var m in FileQueueStore.ReadOnly(number, QueueLayout.PathOf(options.QueueBase, number), warn))
            {
                queue.Messages++;
                for (int i = 0; i < m.Recipients.Count; i++)
                    if (m.States[i].Status == RecipientStatus.Pending && Address.DomainOf(m.Recipients[i]) is var domain)
                        queue.PendingByDomain[domain] = queue.PendingByDomain.GetValueOrDefault(domain) + 1;
            }
        }
        return counts;
    }

    private static string Line(string name, int messages, Dictionary<string, int> perChannel) =>
        $"{name}: messages {messages} recipients {perChannel.Values.Sum()} ({string.Join(", ", perChannel.Select(p => $"{p.Key} {p.Value}"))})";
}
