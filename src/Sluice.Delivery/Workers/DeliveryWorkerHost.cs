// The child's side of a delivery worker (`sluice delivery-worker`): says hello with the server's token,
// takes its settings, then delivers every request it is sent at once, each on its own task, and answers
// each with its results. When the server's end closes (it stopped, or was killed), the worker stops:
// deliveries still open are abandoned, and the server's queue tries them again (at least once, never lost).
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text.Json;
using Sluice.Core.Mail;
using Sluice.Delivery.Smtp;

namespace Sluice.Delivery.Workers;

public static class DeliveryWorkerHost
{
    /// <summary>The environment variable that carries a worker's token: unlike its arguments, no other user can read it.</summary>
    public const string TokenVariable = "SLUICE_DELIVERY_WORKER_TOKEN";

    /// <summary>Serves the server at the other end of <paramref name="socket"/> (connected) until it closes.</summary>
    /// <param name="agentFor">Makes the agent from the server's settings and the routes this worker keeps up to date.</param>
    public static async Task RunAsync(System.Net.Sockets.Socket socket, string token, int maxConnections,
        Func<SmtpAgentSettings, SmtpRoutes, IDeliveryAgent> agentFor, CancellationToken ct)
    {
        await using var frames = new WorkerFrames(socket);
        frames.Send(FrameKind.Hello, JsonSerializer.SerializeToUtf8Bytes(new WorkerHello(token, Environment.ProcessId, maxConnections)));
        if (await frames.ReadAsync(ct).ConfigureAwait(false) is not (FrameKind.Setup, var setup))
            throw new InvalidDataException("the server sent no settings");
        var settings = SmtpAgentSettings.FromJson(setup);
        var routes = new SmtpRoutes(settings.Routes);
        await using var agent = agentFor(settings, routes);
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var open = new ConcurrentDictionary<long, CancellationTokenSource>();
        try
        {
            while (await frames.ReadAsync(stopping.Token).ConfigureAwait(false) is var (kind, body))
            {
                switch (kind)
                {
                    case FrameKind.Deliver:
                        var id = WorkerFrames.IdOf(body);
                        var cts = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token);
                        open[id] = cts;
                        // Off the reading loop: a delivery's first steps (DNS, connect) run synchronously, and the
                        // requests behind it would wait for them.
                        var request = RequestOf(body);
                        _ = Task.Run(() => DeliverAsync(frames, agent, id, request, open, cts), CancellationToken.None);
                        break;
                    case FrameKind.Cancel:
                        Cancel(open, WorkerFrames.IdOf(body));
                        break;
                    case FrameKind.Routes:
                        routes.Replace(SmtpAgentSettings.RoutesFromJson(body));
                        break;
                    default:
                        throw new InvalidDataException($"unexpected frame {kind}");
                }
            }
        }
        finally
        {
            await stopping.CancelAsync().ConfigureAwait(false);
        }
    }

    private static void Cancel(ConcurrentDictionary<long, CancellationTokenSource> open, long id)
    {
        try
        {
            if (open.TryGetValue(id, out var cts)) cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // It finished meanwhile.
        }
    }

    /// <summary>A Deliver frame's body: id (8), header length (4), header, message.</summary>
    internal static byte[] DeliverBody(long id, DeliveryRequest request, out ReadOnlyMemory<byte> message)
    {
        var header = JsonSerializer.SerializeToUtf8Bytes(new DeliveryHeader(request.MessageId, request.Sender, request.Recipients,
            request.Destination, request.Envelope, request.Dsn));
        var rest = new byte[4 + header.Length];
        BinaryPrimitives.WriteInt32LittleEndian(rest, header.Length);
        header.CopyTo(rest, 4);
        message = request.Message;
        return WorkerFrames.WithId(id, rest);
    }

    private static DeliveryRequest RequestOf(byte[] body)
    {
        var length = BinaryPrimitives.ReadInt32LittleEndian(body.AsSpan(8));
        var h = JsonSerializer.Deserialize<DeliveryHeader>(body.AsSpan(12, length)) ?? throw new InvalidDataException("an empty request");
        return new DeliveryRequest(h.MessageId, h.Sender, h.Recipients, h.Destination, body.AsMemory(12 + length)) { Envelope = h.Envelope, Dsn = h.Dsn };
    }

    private static async Task DeliverAsync(WorkerFrames frames, IDeliveryAgent agent, long id, DeliveryRequest request,
        ConcurrentDictionary<long, CancellationTokenSource> open, CancellationTokenSource cts)
    {
        RecipientResult[] results;
        try
        {
            results = await agent.DeliverAsync(request, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            return; // the server no longer waits for it
        }
        catch (Exception e)
        {
            // An agent never throws for a delivery problem: this is a bug, and the mail waits for another try.
            results = request.ForEach(RecipientResult.Deferred($"451 4.3.0 delivery worker error: {e.Message}"));
        }
        finally
        {
            open.TryRemove(id, out _);
            cts.Dispose();
        }
        frames.Send(FrameKind.Results, WorkerFrames.WithId(id, JsonSerializer.SerializeToUtf8Bytes(results)));
    }
}
