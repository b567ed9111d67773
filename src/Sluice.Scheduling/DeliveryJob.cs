// What the todo stage hands the scheduler: recipients of one message that go through one
// channel to one destination, delivered together in one transaction (up to BatchRecipients).
using Sluice.Core.Configuration;
using Sluice.Queue;

namespace Sluice.Scheduling;

internal sealed record DeliveryJob(QueuedMessage Message, ChannelOptions Channel, string Destination, int[] Recipients, DateTimeOffset Due);
