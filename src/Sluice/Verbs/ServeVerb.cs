// `sluice serve`: run the MTA until SIGTERM or SIGINT.
using System.CommandLine;
using System.Runtime.InteropServices;
using Sluice.Core.Configuration;
using Sluice.Core.IO;
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
            ApplyOpenFileLimit(log, options);
            SluiceServer server;
            try
            {
                server = SluiceServer.Start(options, log, time);
            }
            catch (ConfigurationException e)
            {
                // Found only while starting (a TLS file that cannot be read): still a config error.
                Console.Error.WriteLine($"sluice: configuration error: {e.Message}");
                return ExitCodes.Config;
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

    /// <summary>
    /// Raises the open-files limit (each session is a socket), logs what it allows, and caps inbound
    /// sessions below it: a process out of descriptors cannot even start a thread, and the runtime aborts.
    /// </summary>
    private static void ApplyOpenFileLimit(DeliveryLog log, SluiceOptions options)
    {
        if (OpenFileLimit.Raise() is not { } limits) return;
        if (limits.Soft == 0 && limits.Error is not null)
        {
            log.Write($"limits: cannot read the open-files limit ({limits.Error}); it caps simultaneous SMTP sessions");
            return;
        }
        var sessions = limits.SessionEstimate(OpenFileLimit.OpenNow());
        var line = $"limits: open files {OpenFileLimit.Limits.Format(limits.Soft)} (hard {OpenFileLimit.Limits.Format(limits.Hard)}); "
            + $"at most ~{sessions} simultaneous SMTP sessions, fewer while deliveries hold connections";
        if (limits.Error is not null)
            line += $"; cannot raise the soft limit to the hard one ({limits.Error}): the open-files limit caps sessions";
        if (options.Smtp.MaxConnections > sessions)
        {
            line += $"; Smtp.MaxConnections ({options.Smtp.MaxConnections}) is above that, so inbound sessions are capped at {sessions}";
            options.Smtp.MaxConnections = (int)Math.Max(1, sessions);
        }
        log.Write(line);
    }
}
