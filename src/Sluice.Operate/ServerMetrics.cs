// /metrics in Prometheus text format (prometheus-net): the status snapshot taken at each scrape.
// Totals are counters, levels are gauges; destinations are limited to the busiest few, so label
// cardinality stays bounded however many domains the queue holds.
using Prometheus;

namespace Sluice.Operate;

internal sealed class ServerMetrics
{
    public CollectorRegistry Registry { get; } = Metrics.NewCustomRegistry();

    public ServerMetrics(Func<ServerStatus> status)
    {
        var f = Metrics.WithCustomRegistry(Registry);
        var accepted = f.CreateCounter("sluice_messages_accepted_total", "Messages accepted (durable) since start.", "queue");
        var outcomes = f.CreateCounter("sluice_delivery_attempts_total", "Delivery attempts per recipient by outcome since start.", "queue", "outcome");
        var messages = f.CreateGauge("sluice_queue_messages", "Messages in the queue.", "queue");
        var recipients = f.CreateGauge("sluice_queue_recipients", "Recipients not yet delivered or failed.", "queue");
        var active = f.CreateGauge("sluice_queue_active_messages", "Messages worked on with their envelope in memory.", "queue");
        var load = f.CreateGauge("sluice_queue_load", "The busiest channel's slots in use over its slots configured.", "queue");
        var byChannel = f.CreateCounter("sluice_channel_deliveries_total", "Delivery attempts per recipient by channel and outcome since start.", "queue", "channel", "outcome");
        var inUse = f.CreateGauge("sluice_channel_slots_in_use", "Deliveries in progress.", "queue", "channel");
        var limit = f.CreateGauge("sluice_channel_slots", "Concurrency configured.", "queue", "channel");
        var connections = f.CreateGauge("sluice_destination_connections", "Connections in use to the busiest destinations.", "destination");
        var window = f.CreateGauge("sluice_destination_window", "Connections a busy destination may have now (slow start, back-off).", "destination");
        var queues = f.CreateGauge("sluice_queues", "Queues open, by whether they take new mail or only drain.", "state");
        var nodeUp = f.CreateGauge("sluice_cluster_node_up", "1 while the node's lease on the shared queue database is live, 0 once it has run out.", "node");
        var nodeMessages = f.CreateGauge("sluice_cluster_node_messages", "Messages the node holds, at its last heartbeat.", "node");
        var nodeRecipients = f.CreateGauge("sluice_cluster_node_recipients", "Recipients not yet delivered or failed that the node holds, at its last heartbeat.", "node");
        var nodeAccepted = f.CreateGauge("sluice_cluster_node_accepted_messages", "Messages the node accepted since it started, at its last heartbeat.", "node");
        var nodeDelivered = f.CreateGauge("sluice_cluster_node_delivered_recipients", "Recipients the node delivered since it started, at its last heartbeat.", "node");
        Registry.AddBeforeCollectCallback(() =>
        {
            var s = status();
            var nodes = s.Nodes.Select(n => n.Name).ToHashSet();
            foreach (var gauge in new[] { nodeUp, nodeMessages, nodeRecipients, nodeAccepted, nodeDelivered }) Prune(gauge, nodes);
            foreach (var n in s.Nodes)
            {
                nodeUp.WithLabels(n.Name).Set(n.Alive ? 1 : 0);
                if (n.Report is not { } r) continue;
                nodeMessages.WithLabels(n.Name).Set(r.Messages);
                nodeRecipients.WithLabels(n.Name).Set(r.Recipients);
                nodeAccepted.WithLabels(n.Name).Set(r.Accepted);
                nodeDelivered.WithLabels(n.Name).Set(r.Delivered);
            }
            queues.WithLabels("taking").Set(s.Queues.Count - s.Draining.Count);
            queues.WithLabels("draining").Set(s.Draining.Count);
            // A retired queue's series go with it; one opened again under its number starts from zero, as after a restart.
            var open = s.Queues.Select(q => q.Name).ToHashSet();
            foreach (var counter in new[] { accepted, outcomes, byChannel }) Prune(counter, open);
            foreach (var gauge in new[] { messages, recipients, active, load, inUse, limit }) Prune(gauge, open);
            foreach (var q in s.Queues)
            {
                accepted.WithLabels(q.Name).IncTo(q.Accepted);
                outcomes.WithLabels(q.Name, "delivered").IncTo(q.Delivered);
                outcomes.WithLabels(q.Name, "deferred").IncTo(q.Deferred);
                outcomes.WithLabels(q.Name, "failed").IncTo(q.Failed);
                messages.WithLabels(q.Name).Set(q.Messages);
                recipients.WithLabels(q.Name).Set(q.Recipients);
                active.WithLabels(q.Name).Set(q.Active);
                load.WithLabels(q.Name).Set(q.Load);
                foreach (var c in q.Channels)
                {
                    inUse.WithLabels(q.Name, c.Name).Set(c.InUse);
                    limit.WithLabels(q.Name, c.Name).Set(c.Concurrency);
                    byChannel.WithLabels(q.Name, c.Name, "delivered").IncTo(c.Delivered);
                    byChannel.WithLabels(q.Name, c.Name, "deferred").IncTo(c.Deferred);
                    byChannel.WithLabels(q.Name, c.Name, "failed").IncTo(c.Failed);
                }
            }
            // Only the destinations in this snapshot are reported: series of quieter ones are removed.
            var busy = s.Destinations.Select(d => d.Name).ToHashSet();
            Prune(connections, busy);
            Prune(window, busy);
            foreach (var d in s.Destinations)
            {
                connections.WithLabels(d.Name).Set(d.InUse);
                window.WithLabels(d.Name).Set(d.Window);
            }
        });
    }

    /// <summary>Removes the series whose first label is not in <paramref name="keep"/>.</summary>
    private static void Prune<TChild>(Collector<TChild> collector, IReadOnlySet<string> keep) where TChild : ChildBase
    {
        foreach (var labels in collector.GetAllLabelValues().Where(l => !keep.Contains(l[0])).ToList()) collector.RemoveLabelled(labels);
    }
}
