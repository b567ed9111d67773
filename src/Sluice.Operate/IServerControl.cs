// What the admin API asks of the running server: the composition root implements it, so the API
// stays free of how the stages are wired.
namespace Sluice.Operate;

public interface IServerControl
{
    /// <summary>Every queue and the busiest destinations now.</summary>
    ServerStatus Status();

    /// <summary>Deferred mail becomes due now and destination suspensions end (qmail-send's SIGALRM).</summary>
    void Flush();

    /// <summary>Every queue's scheduler now, for the queue verbs (the set may change while the server runs).</summary>
    IReadOnlyList<Sluice.Scheduling.QueueScheduler> Schedulers();
}
