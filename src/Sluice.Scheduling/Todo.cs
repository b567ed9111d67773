// qmail-todo for one queue: takes each newly committed message as it is announced (never by a
// directory scan), logs it, splits its pending recipients by channel and destination, and hands
// the resulting jobs to the queue's scheduler. It runs apart from delivery, so a high injection
// rate cannot starve delivery slots ("silly qmail syndrome").
using Sluice.Core.Configuration;
using Sluice.Core.Logging;
using Sluice.Core.Mail;
using Sluice.Queue;

namespace Sluice.Scheduling;

public sealed class Todo(MailQueue queue, QueueScheduler scheduler, DeliveryLog log)
{
    /// <summary>Hands over the recovered messages, then follows announcements until the queue closes.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        foreach (var m in queue.Store.Recovered) Split(m);
        await foreach (var m in queue.Announcements.ReadAllAsync(ct).ConfigureAwait(false))
        {
            log.Write($"new msg {m.Id}");
            log.Write($"info msg {m.Id}: bytes {m.BodyLength} from <{m.Sender}> qp {queue.Number} rcpts {m.Recipients.Count}"
                + (m.Envelope.AuthenticatedAs is { } user ? $" auth {user}" : ""));
            Split(m);
        }
    }

    internal void Split(QueuedMessage m)
    {
        var channels = scheduler.Channels; // the map in force, which a reload may replace
        var groups = new Dictionary<(ChannelOptions Channel, string Domain, DateTimeOffset Due), List<int>>();
        for (int i = 0; i < m.Recipients.Count; i++)
        {
            var state = m.States[i];
            if (state.Status != RecipientStatus.Pending) continue;
            var domain = Address.DomainOf(m.Recipients[i]);
            var key = (channels.For(domain), domain, state.NextAttempt);
            if (!groups.TryGetValue(key, out var list)) groups[key] = list = [];
            list.Add(i);
        }
        foreach (var ((channel, domain, due), recipients) in groups)
        {
            foreach (var batch in recipients.Chunk(channel.BatchRecipients))
                scheduler.Enqueue(new DeliveryJob(m, channel, domain, batch, due));
        }
    }
}
