// SMTP delivery in child processes (Delivery.Workers): Postfix runs smtp(8) as many processes; here a
// few long-lived workers each hold thousands of sessions, and each has its own open-files limit, so
// one process's limit no longer caps outbound sessions (the big-concurrency seed's per-process limit).
// The server keeps the scheduling, and so every per-destination limit; a worker delivers what it is
// sent. One destination's mail always goes to the same worker, so its pooled connections are reused.
using System.Diagnostics;
using System.Net.Sockets;
using Sluice.Core.Mail;
using Sluice.Delivery.Smtp;

namespace Sluice.Delivery.Workers;

public sealed class DeliveryWorkerPool : IDeliveryAgent
{
    private readonly DeliveryWorker[] _workers;
    private readonly SmtpRoutes _routes;
    private readonly Socket _listener;
    private readonly string _socketPath;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly Action<string> _log;

    /// <param name="socketPath">Where the workers connect back to: a Unix socket only this user may use.</param>
    /// <param name="command">How to start one worker (`sluice delivery-worker --socket PATH`); its token is added here.</param>
    private DeliveryWorkerPool(int count, SmtpAgentSettings settings, SmtpRoutes routes, string socketPath, Func<ProcessStartInfo> command, Action<string> log)
    {
        _routes = routes;
        _socketPath = socketPath;
        _log = log;
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            File.Delete(socketPath); // left by a server that was killed
            _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            _listener.Listen(count);
        }
        catch (Exception e) when (e is SocketException or ArgumentException or UnauthorizedAccessException)
        {
            // A path over sun_path's 108 bytes (a deep DataDir) is an ArgumentException.
            _listener.Dispose();
            throw new IOException($"cannot listen for delivery workers on {socketPath}: {e.Message}", e);
        }
        var setup = settings.ToJson();
        _workers = [.. Enumerable.Range(1, count).Select(n => new DeliveryWorker(n, setup, settings.Routes, routes, command, log))];
        _accepting = AcceptAsync(_stop.Token);
    }

    /// <summary>Starts <paramref name="count"/> workers and returns once each has said hello; throws <see cref="IOException"/> if one does not.</summary>
    public static async Task<DeliveryWorkerPool> StartAsync(int count, SmtpAgentSettings settings, SmtpRoutes routes, string socketPath,
        Func<ProcessStartInfo> command, Action<string> log, TimeSpan timeout)
    {
        var pool = new DeliveryWorkerPool(count, settings, routes, socketPath, command, log);
        foreach (var w in pool._workers) w.Start(pool._stop.Token);
        try
        {
            await Task.WhenAll(pool._workers.Select(w => w.ReadyAsync(timeout, CancellationToken.None))).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            await pool.DisposeAsync().ConfigureAwait(false);
            throw new IOException($"a delivery worker did not start within {timeout.TotalSeconds:0} s (Delivery.Workers {count})");
        }
        return pool;
    }

    public string DestinationOf(string domain) => _routes.DestinationOf(domain);

    public Task<RecipientResult[]> DeliverAsync(DeliveryRequest request, CancellationToken ct)
    {
        var destination = StringComparer.OrdinalIgnoreCase.GetHashCode(DestinationOf(request.Destination));
        return _workers[(int)((uint)destination % (uint)_workers.Length)].DeliverAsync(request, ct);
    }

    /// <summary>Hands each connection to the worker whose token it says; one that says none it knows is closed.</summary>
    private async Task AcceptAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(stop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = GreetAsync(new WorkerFrames(socket), stop);
        }
    }

    private async Task GreetAsync(WorkerFrames frames, CancellationToken stop)
    {
        try
        {
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(stop);
            wait.CancelAfter(TimeSpan.FromSeconds(30));
            if (await frames.ReadAsync(wait.Token).ConfigureAwait(false) is (FrameKind.Hello, var body)
                && System.Text.Json.JsonSerializer.Deserialize<WorkerHello>(body) is { } hello
                && _workers.FirstOrDefault(w => w.Expects(hello.Token)) is { } worker)
            {
                await worker.AttachAsync(frames, hello).ConfigureAwait(false);
                return;
            }
            _log($"delivery: refused a connection on {_socketPath} that is not one of this server's workers");
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or System.Text.Json.JsonException or InvalidDataException)
        {
            _log($"delivery: a worker's connection failed before its hello: {e.Message}");
        }
        await frames.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        await _accepting.ConfigureAwait(false);
        await Task.WhenAll(_workers.Select(w => w.StoppedAsync())).ConfigureAwait(false);
        File.Delete(_socketPath);
        _stop.Dispose();
    }
}
