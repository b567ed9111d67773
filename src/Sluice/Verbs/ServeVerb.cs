// `sluice serve`: run the MTA until SIGTERM or SIGINT.
using System.CommandLine;
using System.Runtime.InteropServices;
using Sluice.Core.Logging;

namespace Sluice.Verbs;

internal static class ServeVerb
{
    public static Command Create(Option<string?> config)
    {
        var command = new Command("serve", "Run the MTA: SMTP listener, queues, schedulers and delivery");
        command.SetAction(async (parse, ct) =>
        {
            var options = ConfigOption.Load(parse.GetValue(config));
            if (options is null) return ExitCodes.Config;
            var time = TimeProvider.System;
            await using var log = new DeliveryLog(Console.Out, options.Log.File, time);
            var stop = new TaskCompletionSource();
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
            using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
            using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
            {
                c.Cancel = true;
                log.Write("sighup: run-time reload of channels and routes is not implemented yet; restart to apply changes");
            });
            SluiceServer server;
            try
            {
                server = SluiceServer.Start(options, log, time);
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"sluice: cannot start: {e.Message}");
                return ExitCodes.Unavailable;
            }
            await stop.Task.WaitAsync(ct).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            log.Write("sluice: stopping");
            await server.DisposeAsync().ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }
}
