// `sluice sendmail ARGS`, or this program run under the name sendmail or mailq: the interface PHP's mail(),
// cron, mutt and mail(1) call. Mail is queued through the running server like `inject`; -bs relays an SMTP
// session to it; -bp lists the queue like `queue list`; -q asks for a retry like `queue flush`.
using Sluice.Core.Configuration;
using Sluice.Core.IO;

namespace Sluice.Verbs;

internal static class SendmailVerb
{
    /// <summary>Set by ./sluice to the name it was run as: `dotnet sluice.dll` loses argv[0].</summary>
    public const string InvokedAsVariable = "SLUICE_INVOKED_AS";
    private const string DefaultConfig = "/etc/sluice/sluice.json";

    /// <summary>sendmail's arguments when this run is a sendmail one; null for the other verbs.</summary>
    public static string[]? ArgumentsIfSendmail(string[] args)
    {
        var name = Environment.GetEnvironmentVariable(InvokedAsVariable) ?? ProgramName();
        // Not passed on: a server started by a program run as sendmail would otherwise think it is one.
        Environment.SetEnvironmentVariable(InvokedAsVariable, null);
        return Path.GetFileName(name) switch
        {
            "sendmail" => args,
            "mailq" => ["-bp", .. args],
            _ => args is ["sendmail", .. var rest] ? rest : null,
        };
    }

    public static async Task<int> RunAsync(string[] args, CancellationToken ct)
    {
        if (SendmailArguments.Parse(args, out var error) is not { } parsed)
            return InjectVerb.Fail(ExitCodes.Usage, $"sendmail: {error}");
        var file = parsed.Config ?? Environment.GetEnvironmentVariable("SLUICE_CONFIG") ?? DefaultConfig;
        var options = ConfigOption.Load(file);
        if (options is null) return ExitCodes.Config;
        return parsed.Mode switch
        {
            SendmailMode.Smtp => await SmtpRelay.RunAsync(options, ct).ConfigureAwait(false),
            SendmailMode.ListQueue => await QueueAdminVerbs.ListAllAsync(options, "mailq", ct).ConfigureAwait(false),
            SendmailMode.Flush => RunningServer.Signal(options, UnixSignal.Alarm, "sendmail -q", "to retry deferred mail now"),
            _ => await InjectVerb.QueueStandardInputAsync(options,
                new InjectVerb.Request(parsed.Sender, parsed.SenderName, parsed.RecipientsFromHeaders, parsed.Recipients, parsed.Verbose), ct).ConfigureAwait(false),
        };
    }

    /// <summary>argv[0] as the caller wrote it (a symlink's name), which /proc/self/exe would resolve away.</summary>
    private static string ProgramName()
    {
        try
        {
            var cmdline = File.ReadAllText("/proc/self/cmdline");
            var end = cmdline.IndexOf('\0', StringComparison.Ordinal);
            return end < 0 ? cmdline : cmdline[..end];
        }
        catch (IOException)
        {
            return "";
        }
    }
}
