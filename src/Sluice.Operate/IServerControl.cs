// What the admin API asks of the running server: the composition root implements it, so the API
// stays free of how the stages are wired.
namespace Sluice.Operate;

public interface IServerControl
{
    /// <summary>Every queue and the busiest destinations now.</summary>
    ServerStatus Status();

    /// <summary>Deferred mail becomes due now and destination suspensions end (qmail-send's SIGALRM).</summary>
    void Flush();
}
