// qmail-todo for one queue: takes each newly committed message as it is announced (never by a
// directory scan), logs it and hands it to the queue's scheduler, which splits its recipients by
// channel and destination. It runs apart from delivery, so a high injection rate cannot starve
// delivery slots ("silly qmail syndrome").
using Sluice.Core.Logging;
using Sluice.Queue;

namespace Sluice.Scheduling;

public sealed class Todo(MailQueue queue, QueueScheduler scheduler, DeliveryLog log)
{
    /// <summary>Hands over the recovered messages, then follows announcements until the queue closes.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        scheduler.Wait(queue.Store.Recovered);
        await foreach (var m in queue.Announcements.ReadAllAsync(ct).ConfigureAwait(false))
        {
            log.Write($"new msg {m.Id}");
            log.Write($"info msg {m.Id}: bytes {m.BodyLength} from <{m.Sender}> qp {queue.Number} rcpts {m.Recipients.Count}"
                + (m.Envelope.AuthenticatedAs is { } user ? $" auth {user}" : ""));
            scheduler.Admit(m);
        }
    }
}
