// The throttle's answer when a scheduler asks to start a delivery to a destination, and what the
// scheduler tells it afterwards about how the destination behaved.
namespace Sluice.Scheduling;

public enum Admission
{
    /// <summary>A slot is taken: deliver, then give it back with <see cref="DestinationThrottle.Release"/>.</summary>
    Granted,
    /// <summary>At its connection window or its rate: leave the work queued; capacity is announced when it frees.</summary>
    Busy,
    /// <summary>Backed off after repeated failures: defer the work without trying a connection.</summary>
    Suspended,
}

public enum DestinationOutcome
{
    /// <summary>The destination answered (whatever it said about the recipients).</summary>
    Reached,
    /// <summary>Refused, timed out, or 421: the destination itself failed.</summary>
    Unavailable,
    /// <summary>Nothing learned (the agent failed, or we were stopping).</summary>
    Unknown,
}
