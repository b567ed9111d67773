// qmail-todo for one queue: takes each newly committed message as it is announced (never by a
// directory scan), logs it and hands it to the queue's scheduler, which splits its recipients by
// channel and destination. It runs apart from delivery, so a high injection rate cannot starve
// delivery slots ("silly qmail syndrome"). Messages the queue takes over from a node that is gone
// (a shared PostgreSQL queue) arrive as Claimed and wait like recovered ones. On a receive-only
// node the scheduler gets nothing: the mail is for the nodes that deliver.
using Sluice.Core.Logging;
using Sluice.Queue;

namespace Sluice.Scheduling;

public sealed class Todo(MailQueue queue, QueueScheduler scheduler, DeliveryLog log, bool delivers = true)
{
    /// <summary>Hands over the recovered messages, then follows announcements and claims until the queue closes.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        scheduler.Wait(queue.Store.Recovered);
        using var closed = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var claims = FollowClaimsAsync(closed.Token);
        try
        {
            await foreach (var m in queue.Announcements.ReadAllAsync(ct).ConfigureAwait(false))
            {
                log.Write($"new msg {m.Id}");
                log.Write($"info msg {m.Id}: bytes {m.BodyLength} from <{m.Sender}> qp {queue.Number} rcpts {m.Recipients.Count}"
                    + (m.Envelope.AuthenticatedAs is { } user ? $" auth {user}" : ""));
                if (delivers) scheduler.Admit(m);
            }
        }
        finally
        {
            await closed.CancelAsync().ConfigureAwait(false);
            try { await claims.ConfigureAwait(false); } catch (OperationCanceledException) { }
        }
    }

    private async Task FollowClaimsAsync(CancellationToken ct)
    {
        await foreach (var m in queue.Store.Claimed.ReadAllAsync(ct).ConfigureAwait(false))
        {
            log.Write($"claimed msg {m.Id}: rcpts {m.PendingRecipients} pending");
            scheduler.Wait([m]);
        }
    }
}
