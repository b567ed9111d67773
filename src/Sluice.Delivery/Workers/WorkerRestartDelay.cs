// How long the supervisor waits before it starts a delivery worker again. One that keeps dying at once
// (a broken install, a limit it cannot live with) is started less and less often, at most once a minute,
// as Postfix's master throttles a failing service; one that ran a minute or more is started after a second.
namespace Sluice.Delivery.Workers;

internal sealed class WorkerRestartDelay
{
    private static readonly TimeSpan Shortest = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Longest = TimeSpan.FromMinutes(1);

    private TimeSpan _next = Shortest;

    /// <summary>The wait before the next start, for a worker that lived this long; each short life doubles the next wait.</summary>
    public TimeSpan After(TimeSpan lived)
    {
        if (lived >= Longest) _next = Shortest;
        var wait = _next;
        _next = wait * 2 < Longest ? wait * 2 : Longest;
        return wait;
    }
}
