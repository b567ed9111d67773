// `sluice serve`: run the MTA until SIGTERM or SIGINT; SIGHUP re-reads the configuration, SIGALRM
// retries deferred mail now. The PID is in DataDir/sluice.pid while it runs.
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
            var configFile = parse.GetValue(config);
            var options = ConfigOption.Load(configFile);
            if (options is null) return ExitCodes.Config;
            var time = TimeProvider.System;
            await using var log = new DeliveryLog(Console.Out, options.Log.File, time);
            var stop = new TaskCompletionSource();
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
            using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
            using var signals = new ServerSignals(log);
            var maxSessions = ApplyOpenFileLimit(log, options);
            SluiceServer server;
            try
            {
                server = SluiceServer.Start(options, configFile, log, time, maxSessions);
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
            signals.Server = server;
            WritePidFile(log, options.PidFile);
            // Logged once signals are handled and the PID file is written: from here the operator verbs work.
            log.Write($"sluice: started with {server.ActiveQueueCount} queues under {server.QueuePlace}");
            await stop.Task.WaitAsync(ct).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            log.Write("sluice: stopping");
            signals.Server = null;
            RemovePidFile(log, options.PidFile);
            await server.DisposeAsync().ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Overwrites a file left by a killed server; without one, `queue flush` and `reload` cannot find this server.</summary>
    private static void WritePidFile(DeliveryLog log, string path)
    {
        try
        {
            PidFile.Write(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Write($"warning: cannot write {path}: {e.Message}; `sluice queue flush` and `sluice reload` will not find this server");
        }
    }

    private static void RemovePidFile(DeliveryLog log, string path)
    {
        try
        {
            PidFile.Remove(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Write($"warning: cannot remove {path}: {e.Message}");
        }
    }

    /// <summary>
    /// Raises the open-files limit (each session is a socket), logs what it allows, and returns the cap on
    /// inbound sessions below it: a process out of descriptors cannot even start a thread, and the runtime aborts.
    /// </summary>
    private static int ApplyOpenFileLimit(DeliveryLog log, SluiceOptions options)
    {
        if (OpenFileLimit.Raise() is not { } limits) return int.MaxValue;
        if (limits.Soft == 0 && limits.Error is not null)
        {
            log.Write($"limits: cannot read the open-files limit ({limits.Error}); it caps simultaneous SMTP sessions");
            return int.MaxValue;
        }
        var sessions = limits.SessionEstimate(OpenFileLimit.OpenNow());
        var line = $"limits: open files {OpenFileLimit.Limits.Format(limits.Soft)} (hard {OpenFileLimit.Limits.Format(limits.Hard)}); "
            + $"at most ~{sessions} simultaneous SMTP sessions, fewer while deliveries hold connections";
        if (limits.Error is not null)
            line += $"; cannot raise the soft limit to the hard one ({limits.Error}): the open-files limit caps sessions";
        var cap = int.MaxValue;
        if (options.Smtp.MaxConnections > sessions)
        {
            line += $"; Smtp.MaxConnections ({options.Smtp.MaxConnections}) is above that, so inbound sessions are capped at {sessions}";
            cap = (int)Math.Max(1, sessions);
        }
        // Outbound sessions need descriptors too (the seeds' per-process fd warning): say when the channels ask for more.
        var queues = options.Queue.Dynamic ? options.Queue.Max : options.Queue.Count;
        var outbound = options.Channels.Where(c => c.Transport == ChannelOptions.SmtpTransport).Sum(c => (long)c.Concurrency) * queues;
        if (outbound > sessions)
            line += $"; remote delivery is configured for {outbound} simultaneous sessions (smtp Channels[].Concurrency × {queues} queues), "
                + $"so the open-files limit caps outbound concurrency at ~{sessions}: connections past it fail and are deferred";
        log.Write(line);
        return cap;
    }
}
