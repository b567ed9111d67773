// What the admin API asks of the running server: the composition root implements it, so the API
// stays free of how the stages are wired.
namespace Sluice.Operate;

public interface IServerControl
{
    /// <summary>Every queue and the busiest destinations now.</summary>
    ServerStatus Status();

    /// <summary>Deferred mail becomes due now and destination suspensions end (qmail-send's SIGALRM).</summary>
    void Flush();

    /// <summary>
    /// Re-reads the configuration file and environment as SIGHUP does (`sluice reload`), logs the outcome
    /// ("reload: …") and returns it: applied, or refused with file, key and reason (the running one stays).
    /// </summary>
    ConfigReload ReloadConfiguration();

    /// <summary>setqload: changes the Scaler's settings; the reason when they cannot be used, else null.</summary>
    string? ChangeQueues(QueueChange change);

    /// <summary>setqload --disable: the queue takes no more mail, drains and retires; the reason when it cannot, else null.</summary>
    string? DisableQueue(int number);

    /// <summary>The first smtp-role listener, through which injected mail enters; null when there is none.</summary>
    System.Net.IPEndPoint? InjectionEndpoint { get; }

    /// <summary>GET /readyz: the listeners are up, the spool takes writes and (on the PostgreSQL store) the database answers.</summary>
    Task<bool> ReadyAsync(CancellationToken ct);

    /// <summary>Every queue's scheduler now, for the queue verbs (the set may change while the server runs).</summary>
    IReadOnlyList<Sluice.Scheduling.QueueScheduler> Schedulers();
}

/// <summary>The settings to change; a null one stays as it is.</summary>
public sealed record QueueChange(bool? Dynamic = null, int? Count = null, int? Max = null, double? Load = null, TimeSpan? IdleRetire = null);
