// What `sluice serve` does on SIGHUP (re-read the configuration) and SIGALRM (retry deferred mail
// now, qmail-send's signal); `sluice queue flush` sends SIGALRM (`sluice reload` asks the admin API).
using System.Runtime.InteropServices;
using Sluice.Core.IO;
using Sluice.Core.Logging;

namespace Sluice;

internal sealed class ServerSignals : IDisposable
{
    private readonly DeliveryLog _log;
    private readonly PosixSignalRegistration _hangup;
    private readonly PosixSignalRegistration _alarm;
    private SluiceServer? _server;

    public ServerSignals(DeliveryLog log)
    {
        _log = log;
        // nohup and many init scripts start a daemon with SIGHUP ignored, and the runtime keeps an ignored signal
        // ignored when a handler is registered: `kill -HUP` would then be lost. Back to the default just before
        // registering (a hangup in between would end the server; it has not begun to take mail yet).
        if (UnixSignal.StopIgnoring(UnixSignal.Hangup))
            log.Write("signals: SIGHUP was ignored at start (nohup?); it is handled now: it re-reads the configuration");
        _hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => { c.Cancel = true; Dispatch("sighup", Reload); });
        _alarm = PosixSignalRegistration.Create((PosixSignal)UnixSignal.Alarm, c => { c.Cancel = true; Dispatch("sigalrm", Flush); });
    }

    /// <summary>The server the signals act on; null while starting or stopping (signals are then logged and dropped).</summary>
    public SluiceServer? Server
    {
        get => Volatile.Read(ref _server);
        set => Volatile.Write(ref _server, value);
    }

    /// <summary>Off the runtime's signal thread: a reload reads files.</summary>
    private void Dispatch(string signal, Action<SluiceServer> act)
    {
        if (Server is not { } server)
        {
            _log.Write($"{signal}: ignored: the server is starting or stopping");
            return;
        }
        _ = Task.Run(() => act(server));
    }

    private static void Reload(SluiceServer server) => server.ReloadAskedBy("sighup");

    private void Flush(SluiceServer server)
    {
        _log.Write($"sigalrm: flushing {server.QueueCount} queues");
        server.Flush();
    }

    public void Dispose()
    {
        _hangup.Dispose();
        _alarm.Dispose();
    }
}
