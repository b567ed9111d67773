// `sluice delivery-worker`: one of the processes `serve` starts when Delivery.Workers > 0, never run by
// hand. It connects back to the server's socket, raises its own open-files limit, and delivers over SMTP
// what the server sends it (DeliveryWorkerHost); it ends when the server's end of the socket closes.
using System.CommandLine;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Sluice.Core.IO;
using Sluice.Delivery.Workers;

namespace Sluice.Verbs;

internal static class DeliveryWorkerVerb
{
    private const string Name = "delivery-worker";

    /// <summary>How `serve` starts a worker: this same program, under the same runtime host.</summary>
    public static ProcessStartInfo StartInfo(string socketPath)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this program is unknown");
        var start = new ProcessStartInfo(self) { UseShellExecute = false };
        // Run as `dotnet sluice.dll`, the program is the host and the assembly its first argument.
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") start.ArgumentList.Add(typeof(DeliveryWorkerVerb).Assembly.Location);
        foreach (var a in new[] { Name, "--socket", socketPath }) start.ArgumentList.Add(a);
        return start;
    }

    public static Command Create()
    {
        var socket = new Option<string>("--socket") { Required = true, Description = "The server's Unix socket to connect to" };
        var command = new Command(Name, "Deliver over SMTP for a running `sluice serve`, which starts these itself (Delivery.Workers)")
        {
            socket,
        };
        command.Hidden = true;
        command.SetAction(async (parse, ct) =>
        {
            SocketEngineThreads.Apply();
            if (Environment.GetEnvironmentVariable(DeliveryWorkerHost.TokenVariable) is not { Length: > 0 } token)
            {
                Console.Error.WriteLine($"sluice {Name}: only `sluice serve` starts this (set Delivery.Workers in its configuration)");
                return ExitCodes.Usage;
            }
            // Ctrl-C in a terminal reaches the whole process group: the server says when its workers stop.
            using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
            // So does a terminal's hangup: the server handles it (a reload), and no longer passes it on ignored.
            using var hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => c.Cancel = true);
            var maxConnections = SessionCaps.WorkerOutbound(OpenFileLimit.Raise(), OpenFileLimit.OpenNow());
            using var connection = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                // Blocking: the frames' own threads read and write it (WorkerFrames), never the socket engine.
                connection.Connect(new UnixDomainSocketEndPoint(parse.GetRequiredValue(socket)));
                await DeliveryWorkerHost.RunAsync(connection, token, maxConnections,
                    (settings, routes) => settings.CreateAgent(routes, TimeProvider.System, SessionBudget.OutboundOnly(maxConnections)), ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or IOException or InvalidDataException or System.Text.Json.JsonException)
            {
                Console.Error.WriteLine($"sluice {Name} (pid {Environment.ProcessId}): {e.Message}");
                return ExitCodes.IoError;
            }
            return ExitCodes.Ok;
        });
        return command;
    }
}
