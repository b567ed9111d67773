// What the scheduler runs: recipients of one message that go through one channel to one domain,
// delivered together in one transaction (up to BatchRecipients).
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Queue;

namespace Sluice.Scheduling;

internal sealed record DeliveryJob(QueuedMessage Message, ChannelOptions Channel, string Domain, int[] Recipients)
{
    /// <summary>
    /// What the destination limits count by: the domain, or for routed mail the route's host:port
    /// (set by the scheduler from the agent when the job is made ready).
    /// </summary>
    public string Destination { get; init; } = Domain;

    /// <summary>The jobs for a message's pending recipients that are due at <paramref name="now"/>, by channel and domain.</summary>
    public static List<DeliveryJob> Split(QueuedMessage m, ChannelMap channels, DateTimeOffset now)
    {
        var groups = new Dictionary<(ChannelOptions Channel, string Domain), List<int>>();
        for (int i = 0; i < m.Recipients.Count; i++)
        {
            var state = m.States[i];
            if (state.Status != RecipientStatus.Pending || state.NextAttempt > now) continue;
            var domain = Address.DomainOf(m.Recipients[i]);
            var key = (channels.For(domain), domain);
            if (!groups.TryGetValue(key, out var list)) groups[key] = list = [];
            list.Add(i);
        }
        var jobs = new List<DeliveryJob>(groups.Count);
        foreach (var ((channel, domain), recipients) in groups)
            foreach (var batch in recipients.Chunk(channel.BatchRecipients))
                jobs.Add(new DeliveryJob(m, channel, domain, batch));
        return jobs;
    }
}
