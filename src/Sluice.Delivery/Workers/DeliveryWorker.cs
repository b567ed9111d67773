// One delivery worker process as the server sees it: started with a fresh token, fed requests once it
// has said hello, and started again after it exits (WorkerRestartDelay). Requests open when it exits are deferred
// (451 4.3.0): the message stays queued and is tried again, so at most a delivery is repeated.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Sluice.Core.Mail;
using Sluice.Delivery.Smtp;

namespace Sluice.Delivery.Workers;

internal sealed class DeliveryWorker(int number, byte[] setup, IReadOnlyDictionary<string, string> setupRoutes, SmtpRoutes routes,
    Func<ProcessStartInfo> command, Action<string> log)
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    /// <summary>How long a delivery waits for a worker being restarted before it is deferred instead.</summary>
    private static readonly TimeSpan ReadyWait = TimeSpan.FromSeconds(30);

    private readonly WorkerRestartDelay _restartDelay = new();
    private TaskCompletionSource<Connection> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private (string Token, TaskCompletionSource<(WorkerFrames, WorkerHello)> Attached)? _expected;
    private Task _supervising = Task.CompletedTask;
    private long _nextId;

    public void Start(CancellationToken stop) => _supervising = SuperviseAsync(stop);

    public bool Expects(string token) => _expected is { } e && CryptographicOperations.FixedTimeEquals(
        System.Text.Encoding.ASCII.GetBytes(e.Token), System.Text.Encoding.ASCII.GetBytes(token));

    /// <summary>A connection said this worker's token: the supervisor takes it from here.</summary>
    public Task AttachAsync(WorkerFrames frames, WorkerHello hello)
    {
        if (_expected is not { } e || !e.Attached.TrySetResult((frames, hello))) return frames.DisposeAsync().AsTask();
        return Task.CompletedTask;
    }

    public async Task ReadyAsync(TimeSpan timeout, CancellationToken ct) =>
        await Volatile.Read(ref _ready).Task.WaitAsync(timeout, ct).ConfigureAwait(false);

    public Task StoppedAsync() => _supervising;

    public async Task<RecipientResult[]> DeliverAsync(DeliveryRequest request, CancellationToken ct)
    {
        Connection connection;
        try
        {
            connection = await Volatile.Read(ref _ready).Task.WaitAsync(ReadyWait, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return request.ForEach(RecipientResult.Deferred($"451 4.3.0 delivery worker {number} is not running; tried again later"));
        }
        return await connection.DeliverAsync(Interlocked.Increment(ref _nextId), request, ct).ConfigureAwait(false);
    }

    private async Task SuperviseAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var token = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
            var attached = new TaskCompletionSource<(WorkerFrames, WorkerHello)>(TaskCreationOptions.RunContinuationsAsynchronously);
            _expected = (token, attached);
            var start = command();
            start.Environment[DeliveryWorkerHost.TokenVariable] = token;
            Process process;
            var lived = Stopwatch.StartNew();
            try
            {
                process = Process.Start(start) ?? throw new InvalidOperationException("no process");
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                var wait = _restartDelay.After(TimeSpan.Zero);
                log($"delivery: cannot start worker {number} ({start.FileName}): {e.Message}; trying again in {wait.TotalSeconds:0} s");
                await Pause(wait, stop).ConfigureAwait(false);
                continue;
            }
            var exited = process.WaitForExitAsync(CancellationToken.None);
            var first = await Task.WhenAny(attached.Task, exited, Task.Delay(StartTimeout, stop)).ConfigureAwait(false);
            _expected = null;
            var open = 0;
            if (first == attached.Task)
            {
                var (frames, hello) = attached.Task.Result;
                var connection = new Connection(frames, setupRoutes, routes, number);
                frames.Send(FrameKind.Setup, setup);
                log($"delivery: worker {number} (pid {hello.Pid}) ready, at most {hello.MaxConnections} outbound connections");
                Volatile.Read(ref _ready).TrySetResult(connection);
                await connection.ReadResultsAsync(stop).ConfigureAwait(false);
                Volatile.Write(ref _ready, new TaskCompletionSource<Connection>(TaskCreationOptions.RunContinuationsAsynchronously));
                open = connection.Abandon(process.Id);
                await frames.DisposeAsync().ConfigureAwait(false);
            }
            else if (!stop.IsCancellationRequested && !exited.IsCompleted)
            {
                log($"delivery: worker {number} (pid {process.Id}) did not say hello within {StartTimeout.TotalSeconds:0} s; stopping it");
            }
            await EndAsync(process, exited, stopping: stop.IsCancellationRequested).ConfigureAwait(false);
            var restartIn = _restartDelay.After(lived.Elapsed);
            if (!stop.IsCancellationRequested)
            {
                log($"delivery: worker {number} (pid {process.Id}) exited with status {process.ExitCode}"
                    + (open > 0 ? $"; its {open} open deliveries are deferred and tried again" : "")
                    + $"; starting it again in {restartIn.TotalSeconds:0} s");
            }
            process.Dispose();
            await Pause(restartIn, stop).ConfigureAwait(false);
        }
    }

    /// <summary>A worker sees its socket close and exits; one that does not within 10 s (or that never said hello) is killed.</summary>
    private static async Task EndAsync(Process process, Task exited, bool stopping)
    {
        if (!stopping && !exited.IsCompleted) process.Kill();
        if (await Task.WhenAny(exited, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false) != exited) process.Kill();
        await exited.ConfigureAwait(false);
    }

    private static async Task Pause(TimeSpan wait, CancellationToken stop)
    {
        try
        {
            await Task.Delay(wait, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopping: no restart.
        }
    }

    /// <summary>The socket to one running worker, and the requests it has not answered yet.</summary>
    private sealed class Connection(WorkerFrames frames, IReadOnlyDictionary<string, string> sentRoutes, SmtpRoutes routes, int number)
    {
        private readonly ConcurrentDictionary<long, (TaskCompletionSource<RecipientResult[]> Done, DeliveryRequest Request)> _open = new();
        private readonly Lock _routesLock = new();
        private IReadOnlyDictionary<string, string> _sentRoutes = sentRoutes;
        private volatile bool _gone;

        public async Task<RecipientResult[]> DeliverAsync(long id, DeliveryRequest request, CancellationToken ct)
        {
            var done = new TaskCompletionSource<RecipientResult[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            _open[id] = (done, request);
            if (_gone && _open.TryRemove(id, out _)) return request.ForEach(RecipientResult.Deferred($"451 4.3.0 delivery worker {number} stopped; tried again later"));
            SendRoutesIfReloaded();
            var body = DeliveryWorkerHost.DeliverBody(id, request, out var message);
            frames.Send(FrameKind.Deliver, body, message.Span);
            await using var cancel = ct.Register(() =>
            {
                if (!_open.TryRemove(id, out _)) return;
                done.TrySetCanceled(ct);
                frames.Send(FrameKind.Cancel, WorkerFrames.WithId(id, []));
            });
            return await done.Task.ConfigureAwait(false);
        }

        /// <summary>A reload's routes reach the worker before the first request that may follow them.</summary>
        private void SendRoutesIfReloaded()
        {
            var table = routes.Table;
            if (ReferenceEquals(table, Volatile.Read(ref _sentRoutes))) return;
            lock (_routesLock)
            {
                if (ReferenceEquals(table, _sentRoutes)) return;
                // Queued under the lock: no request can see the new table as sent before its frame is queued.
                frames.Send(FrameKind.Routes, JsonSerializer.SerializeToUtf8Bytes(table));
                Volatile.Write(ref _sentRoutes, table);
            }
        }

        /// <summary>Completes requests with the worker's results until its socket closes (or the server stops).</summary>
        public async Task ReadResultsAsync(CancellationToken stop)
        {
            try
            {
                while (await frames.ReadAsync(stop).ConfigureAwait(false) is (FrameKind.Results, var body))
                {
                    if (_open.TryRemove(WorkerFrames.IdOf(body), out var request))
                        request.Done.TrySetResult(JsonSerializer.Deserialize<RecipientResult[]>(body.AsSpan(8)) ?? []);
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or JsonException or InvalidDataException)
            {
                // The worker exited or broke the protocol: it is stopped and started again either way.
            }
        }

        /// <summary>Defers every request still open; returns how many there were.</summary>
        public int Abandon(int pid)
        {
            _gone = true;
            var count = 0;
            foreach (var id in _open.Keys)
            {
                if (!_open.TryRemove(id, out var open)) continue;
                open.Done.TrySetResult(open.Request.ForEach(
                    RecipientResult.Deferred($"451 4.3.0 delivery worker {number} (pid {pid}) stopped before it reported; tried again later")));
                count++;
            }
            return count;
        }
    }
}
