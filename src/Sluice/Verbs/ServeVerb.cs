// `sluice serve`: run the MTA until SIGTERM or SIGINT; SIGHUP re-reads the configuration, SIGALRM
// retries deferred mail now. The PID is in DataDir/sluice.pid while it runs.
using System.CommandLine;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Sluice.Core.Configuration;
using Sluice.Core.IO;
using Sluice.Core.Logging;

namespace Sluice.Verbs;

internal static class ServeVerb
{
    public static Command Create(Option<string?> config)
    {
        var roles = new Option<string?>("--roles")
        {
            Description = "What this node does with a shared PostgreSQL queue: receive, deliver, or receive,deliver (the default; overrides Queue.Roles)",
        };
        var command = new Command("serve", "Run the MTA: SMTP listener, queues, schedulers and delivery") { roles };
        command.SetAction(async (parse, ct) =>
        {
            PrivateFiles.Apply(); // before the log, spool, pid file and sockets are created
            var sockets = SocketEngineThreads.Apply();
            var configFile = parse.GetValue(config);
            var options = ConfigOption.Load(configFile);
            if (options is null) return ExitCodes.Config;
            var commandLineRoles = parse.GetValue(roles);
            if (commandLineRoles is not null)
            {
                if (RolesProblem(commandLineRoles, options) is { } problem)
                {
                    Console.Error.WriteLine($"sluice: configuration error: --roles: {problem}");
                    return ExitCodes.Config;
                }
                options.Queue.Roles = commandLineRoles;
            }
            var time = TimeProvider.System;
            try
            {
                ServerPrivileges.GiveNewDataDir(options);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"sluice: cannot start: DataDir: {e.Message}");
                return ExitCodes.Unavailable;
            }
            await using var log = DeliveryLog.ToStandardOutput(options.Log.File, time);
            var stop = new TaskCompletionSource();
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
            using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
            using var signals = new ServerSignals(log);
            log.Write(sockets);
            var sessions = ApplyOpenFileLimit(log, options);
            IReadOnlyList<(Socket, SmtpRole)>? bound;
            try
            {
                // Ports below 1024 need root (or CAP_NET_BIND_SERVICE): bound now, accepted on only after the drop.
                bound = SluiceServer.Receives(options) ? SluiceServer.BindListeners(options) : null;
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"sluice: cannot start: {e.Message}");
                return ExitCodes.Unavailable;
            }
            if (ServerPrivileges.Apply(options, log) is { } refused)
            {
                Console.Error.WriteLine($"sluice: configuration error: {configFile ?? "embedded defaults"}: {refused}");
                return ExitCodes.Config;
            }
            SluiceServer server;
            try
            {
                server = SluiceServer.Start(options, configFile, log, time, sessions, bound);
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
            server.CommandLineRoles = commandLineRoles;
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

    private static string? RolesProblem(string roles, SluiceOptions options) =>
        !NodeRoles.TryParse(roles, out var parsed) ? $"\"{roles}\" is not a list of roles (receive, deliver, or receive,deliver)"
        : parsed != NodeRole.Both && options.Queue.Store != QueueOptions.PostgresStore
            ? "a node with the file spool receives and delivers: roles other than receive,deliver need Queue:Store \"postgres\"" : null;

    /// <summary>Overwrites a file left by a killed server; without one, `queue flush` cannot find this server.</summary>
    private static void WritePidFile(DeliveryLog log, string path)
    {
        try
        {
            PidFile.Write(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Write($"warning: cannot write {path}: {e.Message}; `sluice queue flush` will not find this server");
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
    /// Raises the open-files limit (each session is a socket), logs what it allows, and returns the budget
    /// sessions share below it: a process out of descriptors cannot even start a thread, and the runtime aborts.
    /// </summary>
    private static SessionBudget ApplyOpenFileLimit(DeliveryLog log, SluiceOptions options)
    {
        if (OpenFileLimit.Raise() is not { } limits) return SessionBudget.Unlimited;
        if (limits.Soft == 0 && limits.Error is not null)
        {
            log.Write($"limits: cannot read the open-files limit ({limits.Error}); it caps simultaneous SMTP sessions");
            return SessionBudget.Unlimited;
        }
        var (sessions, line) = SessionCaps.Plan(limits, OpenFileLimit.OpenNow(), options);
        log.Write(line);
        return sessions;
    }
}
