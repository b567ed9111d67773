// What the todo stage hands the scheduler: recipients of one message that go through one
// channel to one domain, delivered together in one transaction (up to BatchRecipients).
using Sluice.Core.Configuration;
using Sluice.Queue;

namespace Sluice.Scheduling;

internal sealed record DeliveryJob(QueuedMessage Message, ChannelOptions Channel, string Domain, int[] Recipients, DateTimeOffset Due)
{
    /// <summary>
    /// What the destination limits count by: the domain, or for routed mail the route's host:port
    /// (set by the scheduler from the agent when the job becomes due).
    /// </summary>
    public string Destination { get; init; } = Domain;
}
