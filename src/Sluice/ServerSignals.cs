// What `sluice serve` does on SIGHUP (re-read the configuration) and SIGALRM (retry deferred mail
// now, qmail-send's signal); `sluice reload` and `sluice queue flush` send them.
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

    private void Reload(SluiceServer server)
    {
        var reload = server.Reload();
        foreach (var line in reload.Lines) _log.Write($"sighup: {line}");
        if (reload.Applied) server.AnnounceReload();
    }

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
