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
            ? await PostgresQueueCounts.ReadAsync(options.Queue.ConnectionString!, ct).ConfigureAwait(false)
            : SpoolCounts(options, warn);
        var channels = new ChannelMap(options.Channels);
        var total = options.Channels.ToDictionary(c => c.Name, _ => 0);
        var text = new StringBuilder();
        foreach (var (number, queue) in counts)
        {
            var perChannel = options.Channels.ToDictionary(c => c.Name, _ => 0);
            foreach (var (domain, pending) in queue.PendingByDomain) perChannel[channels.For(domain).Name] += pending;
            foreach (var (k, v) in perChannel) total[k] += v;
            text.AppendLine(Line($"queue{number}", queue.Messages, perChannel));
            if (options.Queue.Store == QueueOptions.PostgresStore) continue;
            // Never silent: a damaged record copied aside at start stays listed until the operator removes it.
            foreach (var bad in FileQueueStore.CorruptEntries(QueueLayout.PathOf(options.QueueBase, number)))
                text.AppendLine($"queue{number}: corrupt: {bad.FullName} ({bad.Length} bytes copied aside from a damaged spool record)");
        }
        text.AppendLine(Line("total", counts.Values.Sum(q => q.Messages), total));
        return text.ToString();
    }

    private static SortedDictionary<int, QueueCounts> SpoolCounts(SluiceOptions options, Action<string> warn)
    {
        var counts = new SortedDictionary<int, QueueCounts>();
        foreach (var number in QueueLayout.Numbers(options.QueueBase, Enumerable.Range(options.Queue.Start, options.Queue.Count)))
        {
            var queue = counts[number] = new QueueCounts();
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
