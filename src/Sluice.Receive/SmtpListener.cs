// Accepts TCP connections on the configured endpoints and runs a session on each, all async:
// no thread per connection. It also counts connections, in all and per client address, and turns
// away those over the limits with 421 4.7.0 before a session is started; one past the descriptors
// the sessions share with outbound delivery (SessionBudget) gets 421 4.3.2 the same way.
using System.Net;
using System.Net.Sockets;
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Core.IO;
using Sluice.Core.Logging;

namespace Sluice.Receive;

/// <summary>Smtp.MaxConnections and MaxConnectionsPerClient; RelayNetworks are exempt from the second, as in Postfix.</summary>
public sealed record ConnectionLimits(int Total, int PerClient)
{
    /// <summary>Past this many sessions the short timeout applies (Postfix's stress mode).</summary>
    public int StressThreshold => Math.Max(1, Total * 4 / 5);
}

/// <param name="sessions">The descriptor budget each session takes a slot of, shared with outbound delivery.</param>
public sealed class SmtpListener(SessionContext context, ConnectionLimits limits, SessionBudget sessions, DeliveryLog log) : IAsyncDisposable
{
    private readonly List<Socket> _sockets = [];
    private readonly List<Task> _acceptLoops = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<IPAddress, int> _perClient = [];
    private long _sessions;
    private int _active;
    private ReceivePolicy _policy = context.Policy;

    /// <summary>The policy new sessions get; a reload replaces it, sessions in progress keep theirs.</summary>
    public ReceivePolicy Policy
    {
        get => Volatile.Read(ref _policy);
        set => Volatile.Write(ref _policy, value);
    }

    public int ActiveSessions => Volatile.Read(ref _active);

    /// <summary>Binds every endpoint and starts accepting on it.</summary>
    public void Start(IEnumerable<(IPEndPoint Endpoint, SmtpRole Role)> endpoints) => Start(Bind(endpoints));

    /// <summary>
    /// Binds and listens on every endpoint but reads nothing yet: a root-started server binds ports below 1024
    /// before it drops privileges, and accepts only after. Throws with the endpoint named if one cannot be bound.
    /// </summary>
    public static IReadOnlyList<(Socket Socket, SmtpRole Role)> Bind(IEnumerable<(IPEndPoint Endpoint, SmtpRole Role)> endpoints)
    {
        var bound = new List<(Socket, SmtpRole)>();
        foreach (var (ep, role) in endpoints)
        {
            var socket = new Socket(ep.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.Bind(ep);
                socket.Listen(4096);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                foreach (var (other, _) in bound) other.Dispose();
                throw new IOException($"cannot listen on {ep}: {e.Message}", e);
            }
            bound.Add((socket, role));
        }
        return bound;
    }

    /// <summary>Accepts on sockets <see cref="Bind"/> made; they are this listener's from here, to close when it is disposed.</summary>
    public void Start(IReadOnlyList<(Socket Socket, SmtpRole Role)> bound)
    {
        _sockets.AddRange(bound.Select(b => b.Socket));
        foreach (var (socket, role) in bound)
        {
            if (role == SmtpRole.Submissions && context.Certificate is null)
                throw new InvalidOperationException($"cannot listen on {socket.LocalEndPoint} as submissions: no TLS certificate");
        }
        foreach (var (socket, role) in bound)
        {
            // The smtp role keeps the plain form scripts look for; other roles name themselves.
            log.Write(role == SmtpRole.Smtp ? $"smtp: listening on {socket.LocalEndPoint}" : $"smtp: listening for {role.ToString().ToLowerInvariant()} on {socket.LocalEndPoint}");
            var roleContext = context with { Role = role, UnderStress = () => ActiveSessions >= limits.StressThreshold };
            _acceptLoops.Add(AcceptLoopAsync(socket, roleContext));
        }
    }

    public IReadOnlyList<EndPoint> LocalEndpoints => [.. _sockets.Select(s => s.LocalEndPoint!)];

    private async Task AcceptLoopAsync(Socket listener, SessionContext roleContext)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
            {
                // Out of descriptors (EMFILE): retrying at once would spin; wait for sessions to end.
                log.Write($"smtp: cannot accept on {listener.LocalEndPoint}: {e.Message}; pausing accepts for a moment");
                if (!await PauseAsync().ConfigureAwait(false)) return;
                continue;
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested) return;
                continue;
            }
            _ = RunSessionAsync(client, roleContext);
        }
    }

    private async Task<bool> PauseAsync()
    {
        try
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), context.Time, _stop.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private async Task RunSessionAsync(Socket client, SessionContext roleContext)
    {
        var remote = client.RemoteEndPoint as IPEndPoint;
        var address = remote?.Address is { IsIPv4MappedToIPv6: true } mapped ? mapped.MapToIPv4() : remote?.Address;
        var policy = Policy;
        if (!ReferenceEquals(policy, roleContext.Policy)) roleContext = roleContext with { Policy = policy };
        var counted = address is not null && !policy.IsRelayClient(address);
        var total = Interlocked.Increment(ref _active);
        var fromClient = counted ? Count(address!, +1) : 0;
        var released = false;
        var budgeted = false;
        // The slot is given back before the socket closes, so a client that reconnects the moment it
        // sees the close finds it free.
        void Release()
        {
            if (released) return;
            released = true;
            Interlocked.Decrement(ref _active);
            if (counted) Count(address!, -1);
            if (budgeted) sessions.ReleaseInbound();
        }
        try
        {
            if (total > limits.Total || fromClient > limits.PerClient)
            {
                await RefuseAsync(client, roleContext, "4.7.0", total > limits.Total ? "too many connections" : $"too many connections from {address}").ConfigureAwait(false);
                return;
            }
            // RFC 3463 §3.4: X.3.2, the system is not accepting network messages (for now): the rest is the deliveries'.
            if (!(budgeted = sessions.TryTakeInbound()))
            {
                await RefuseAsync(client, roleContext, "4.3.2", "all sessions this server's open files allow are in use").ConfigureAwait(false);
                return;
            }
            client.NoDelay = true;
            var id = Interlocked.Increment(ref _sessions);
            await using var transport = new SmtpTransport(new NetworkStream(client, ownsSocket: true));
            var session = new SmtpSession(roleContext, remote, id);
            try
            {
                await session.RunAsync(transport, _stop.Token).ConfigureAwait(false);
            }
            finally
            {
                Release();
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away or we are stopping: nothing was acknowledged that is not durable.
        }
        finally
        {
            Release();
        }
    }

    private async Task RefuseAsync(Socket client, SessionContext roleContext, string status, string why)
    {
        using (client)
        {
            log.Write($"smtp: refused {client.RemoteEndPoint}: {why}");
            // On port 465 nothing can be said before TLS, so the connection is just closed.
            if (roleContext.Role != SmtpRole.Submissions)
                await client.SendAsync(Encoding.ASCII.GetBytes($"421 {status} {roleContext.Policy.Hostname} Error: {why}; try again later\r\n"), _stop.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Both);
        }
    }

    private int Count(IPAddress address, int delta)
    {
        lock (_perClient)
        {
            var n = _perClient.GetValueOrDefault(address) + delta;
            if (n == 0) _perClient.Remove(address);
            else _perClient[address] = n;
            return n;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var s in _sockets) s.Dispose();
        await Task.WhenAll(_acceptLoops).ConfigureAwait(false);
        _stop.Dispose();
    }
}
