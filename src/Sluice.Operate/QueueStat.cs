// `sluice queue stat` (qmail-qstat): messages and pending recipients per queue and channel,
// read from the spool without disturbing a running server; and any damaged records moved aside.
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Queue;
using Sluice.Queue.Spool;
using Sluice.Scheduling;

namespace Sluice.Operate;

public static class QueueStat
{
    public static string Render(SluiceOptions options, Action<string> warn)
    {
        var channels = new ChannelMap(options.Channels);
        var total = new Dictionary<string, int>();
        int totalMessages = 0;
        var text = new StringBuilder();
        foreach (var number in QueueLayout.Numbers(options.QueueBase, Enumerable.Range(options.Queue.Start, options.Queue.Count)))
        {
            var dir = QueueLayout.PathOf(options.QueueBase, number);
            var messages = FileQueueStore.ReadOnly(number, dir, warn);
            var perChannel = options.Channels.ToDictionary(c => c.Name, _ => 0);
            foreach (var m in messages)
                for (int i = 0; i < m.Recipients.Count; i++)
                    if (m.States[i].Status == RecipientStatus.Pending) perChannel[channels.For(Address.DomainOf(m.Recipients[i])).Name]++;
            totalMessages += messages.Count;
            foreach (var (k, v) in perChannel) total[k] = total.GetValueOrDefault(k) + v;
            text.AppendLine(Line($"queue{number}", messages.Count, perChannel));
            // Never silent: a damaged record copied aside at start stays listed until the operator removes it.
            foreach (var bad in FileQueueStore.CorruptEntries(dir))
                text.AppendLine($"queue{number}: corrupt: {bad.FullName} ({bad.Length} bytes copied aside from a damaged spool record)");
        }
        text.AppendLine(Line("total", totalMessages, total));
        return text.ToString();
    }

    private static string Line(string name, int messages, Dictionary<string, int> perChannel) =>
        $"{name}: messages {messages} recipients {perChannel.Values.Sum()} ({string.Join(", ", perChannel.Select(p => $"{p.Key} {p.Value}"))})";
}
