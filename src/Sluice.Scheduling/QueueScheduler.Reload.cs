// A configuration reload (SIGHUP) as one queue's scheduler takes it: the new channel map replaces the
// old, ready work is split again by it, and a removed channel's slots stay only while its deliveries finish.
namespace Sluice.Scheduling;

public sealed partial class QueueScheduler
{
    private ChannelMap _map;
    /// <summary>Channels no longer configured whose deliveries were in flight at a reload; each keeps its count until they end.</summary>
    private readonly List<ChannelSlots> _retiredChannels = [];

    /// <summary>The channel map in force: Todo splits new mail by it.</summary>
    public ChannelMap Channels
    {
        get { lock (_gate) return _map; }
    }

    /// <summary>
    /// Takes a reloaded channel map: channels kept by name keep their slots in use and take the new limits
    /// (the throttle reads them at the next acquire); ready jobs are handed out again by the new map; jobs
    /// waiting for a retry are handed out by it when they come due. Deliveries in flight finish as they are.
    /// </summary>
    public void Reload(ChannelMap channels)
    {
        lock (_gate)
        {
            var ready = _channels.SelectMany(c => c.TakeAllReady()).ToList();
            foreach (var job in ready) UncountJob(job);
            var known = _channels.Concat(_retiredChannels).ToList();
            _map = channels;
            _channels.Clear();
            foreach (var options in channels.Channels)
            {
                var slots = known.Find(c => c.Options.Name == options.Name) ?? new ChannelSlots(options);
                slots.Options = options;
                _channels.Add(slots);
            }
            _retiredChannels.Clear();
            _retiredChannels.AddRange(known.Where(c => c.InUse > 0 && !_channels.Contains(c)));
            foreach (var job in ready) MakeReady(job);
        }
        StartJobs();
    }

    /// <summary>
    /// A job split before a reload goes to the channel that now owns its domain, in that channel's batch
    /// size; true when it was handed on that way. Caller holds the lock.
    /// </summary>
    private bool ReassignedByReload(DeliveryJob job)
    {
        var channel = _map.For(job.Domain);
        if (ReferenceEquals(channel, job.Channel)) return false;
        var batches = job.Recipients.Chunk(channel.BatchRecipients).ToList();
        _openJobs[job.Message.Spooled] += batches.Count - 1;
        foreach (var batch in batches) MakeReady(job with { Channel = channel, Recipients = batch });
        return true;
    }

    private sealed partial class ChannelSlots
    {
        /// <summary>Empties the ready queues, each destination's jobs in their order.</summary>
        public List<DeliveryJob> TakeAllReady()
        {
            var jobs = new List<DeliveryJob>();
            while (_turns.TryDequeue(out var destination)) jobs.AddRange(_ready[destination]);
            _ready.Clear();
            return jobs;
        }
    }
}
