// Accepts TCP connections on the configured endpoints and runs a session on each, all async:
// no thread per connection.
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Sluice.Core.Logging;
using Sluice.Queue;

namespace Sluice.Receive;

public sealed class SmtpListener(ReceivePolicy policy, IMessageAcceptor acceptor, DeliveryLog log, TimeProvider time) : IAsyncDisposable
{
    private readonly List<Socket> _sockets = [];
    private readonly List<Task> _acceptLoops = [];
    private readonly CancellationTokenSource _stop = new();
    private long _sessions;

    /// <summary>Binds every endpoint; throws with the endpoint named if one cannot be bound.</summary>
    public void Start(IEnumerable<IPEndPoint> endpoints)
    {
        foreach (var ep in endpoints)
        {
            var socket = new Socket(ep.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.Bind(ep);
                socket.Listen(1024);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                throw new IOException($"cannot listen on {ep}: {e.Message}", e);
            }
            _sockets.Add(socket);
            log.Write($"smtp: listening on {socket.LocalEndPoint}");
            _acceptLoops.Add(AcceptLoopAsync(socket));
        }
    }

    public IReadOnlyList<EndPoint> LocalEndpoints => [.. _sockets.Select(s => s.LocalEndPoint!)];

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested) return;
                continue;
            }
            _ = RunSessionAsync(client);
        }
    }

    private async Task RunSessionAsync(Socket client)
    {
        client.NoDelay = true;
        var id = Interlocked.Increment(ref _sessions);
        await using var stream = new NetworkStream(client, ownsSocket: true);
        var pipe = new DuplexPipe(PipeReader.Create(stream), PipeWriter.Create(stream));
        var session = new SmtpSession(policy, acceptor, time, client.RemoteEndPoint as IPEndPoint, id);
        try
        {
            await session.RunAsync(pipe, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away or we are stopping: nothing was acknowledged that is not durable.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var s in _sockets) s.Dispose();
        await Task.WhenAll(_acceptLoops).ConfigureAwait(false);
        _stop.Dispose();
    }

    private sealed record DuplexPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;
}
