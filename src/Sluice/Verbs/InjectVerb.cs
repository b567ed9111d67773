// `sluice inject -f SENDER RCPT…` (and sendmail's -t -i): queue a message read from stdin
// through the running instance's SMTP listener; exit 0 only once it answered 250, which it does
// only when the message is durable.
using System.CommandLine;
using System.Net;
using Sluice.Core.Configuration;
using Sluice.Operate;
using Sluice.Receive;
using Sluice.Smtp;

namespace Sluice.Verbs;

internal static class InjectVerb
{
    public static Command Create(Option<string?> config)
    {
        var from = new Option<string?>("-f") { Description = "Envelope sender (default: USER@Hostname); \"\" or <> for a bounce" };
        var fromHeaders = new Option<bool>("-t") { Description = "Also take recipients from To, Cc and Bcc; Bcc is removed" };
        var ignoreDots = new Option<bool>("-i") { Description = "Accepted for sendmail compatibility: a lone '.' never ends input here" };
        var recipients = new Argument<string[]>("recipient") { Arity = ArgumentArity.ZeroOrMore, Description = "Envelope recipients" };
        var command = new Command("inject", "Queue a message read from standard input") { from, fromHeaders, ignoreDots, recipients };
        command.SetAction(async (parse, ct) =>
        {
            var options = ConfigOption.Load(parse.GetValue(config));
            if (options is null) return ExitCodes.Config;
            var request = new Request(parse.GetValue(from), null, parse.GetValue(fromHeaders), parse.GetValue(recipients) ?? [], Verbose: false);
            return await QueueStandardInputAsync(options, request, ct).ConfigureAwait(false);
        });
        return command;
    }

    /// <param name="Sender">Envelope sender; null: USER@Hostname; "" or "&lt;&gt;": a bounce.</param>
    /// <param name="SenderName">Display name for a From: added when the message has none (sendmail -F).</param>
    /// <param name="Verbose">Print the queue ids the server gave (sendmail -v).</param>
    public sealed record Request(string? Sender, string? SenderName, bool RecipientsFromHeaders, IReadOnlyList<string> Recipients, bool Verbose);

    /// <summary>What `inject` and `sendmail` do: read stdin, prepare it, queue it; the sysexits code of the outcome.</summary>
    public static async Task<int> QueueStandardInputAsync(SluiceOptions options, Request request, CancellationToken ct)
    {
        var sender = request.Sender ?? $"{Environment.UserName}@{options.Hostname}";
        if (sender == "<>") sender = "";
        using var stdin = Console.OpenStandardInput();
        var input = new MemoryStream();
        await stdin.CopyToAsync(input, ct).ConfigureAwait(false);
        if (input.Length > options.Smtp.MaxMessageBytes)
            return Fail(ExitCodes.DataError, $"message of {input.Length} bytes exceeds Smtp.MaxMessageBytes ({options.Smtp.MaxMessageBytes})");
        var prepared = InjectedMessage.Prepare(input.GetBuffer().AsSpan(0, (int)input.Length), sender, request.RecipientsFromHeaders, options.Hostname,
            TimeProvider.System.GetUtcNow(), request.SenderName);
        var rcpts = request.Recipients.Concat(prepared.HeaderRecipients).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        if (rcpts.Count == 0) return Fail(ExitCodes.Usage, "no recipients: name them as arguments or use -t");
        return await SendAsync(options, sender, rcpts, prepared.Message, request.Verbose, ct).ConfigureAwait(false);
    }

    /// <summary>The first plain smtp listener: submission ones would want TLS and AUTH from a local program.</summary>
    public static IPEndPoint? SmtpListener(SluiceOptions options) => options.Smtp.Listen
        .Select(l => Endpoints.TryParseSmtpListen(l, out var ep, out var role) && role == SmtpRole.Smtp ? ep : null)
        .FirstOrDefault(ep => ep is not null);

    private static async Task<int> SendAsync(SluiceOptions options, string sender, List<string> rcpts, byte[] message, bool verbose, CancellationToken ct)
    {
        if (SmtpListener(options) is not { } ep)
            return Fail(ExitCodes.Config, "Smtp.Listen names no smtp-role address to inject through");
        try
        {
            var outcome = await LoopbackInjection.SendAsync(ep, options.Hostname, sender, rcpts, message, ct).ConfigureAwait(false);
            foreach (var (rcpt, reply) in outcome.Refused) Console.Error.WriteLine($"sluice: <{rcpt}>: {reply}");
            if (verbose && outcome.QueueIds.Count > 0) Console.Error.WriteLine($"sluice: queued as {string.Join(' ', outcome.QueueIds)}");
            if (outcome.Refused.Count == 0) return ExitCodes.Ok;
            return outcome.Refused.Any(r => !r.Reply.IsTransient) ? ExitCodes.DataError : ExitCodes.TempFail;
        }
        catch (SmtpException e)
        {
            return Fail(e.Transient ? ExitCodes.TempFail : ExitCodes.DataError, $"{e.Message} (is `sluice serve` running with this configuration?)");
        }
    }

    public static int Fail(int code, string why)
    {
        Console.Error.WriteLine($"sluice: {why}");
        return code;
    }
}
