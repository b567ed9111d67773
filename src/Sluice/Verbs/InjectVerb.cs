// `sluice inject -f SENDER RCPT…` (and sendmail's -t -i): queue a message read from stdin
// through the running instance's SMTP listener; exit 0 only once it answered 250, which it does
// only when the message is durable.
using System.CommandLine;
using Sluice.Core.Configuration;
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
            var sender = parse.GetValue(from) ?? $"{Environment.UserName}@{options.Hostname}";
            if (sender == "<>") sender = "";
            using var stdin = Console.OpenStandardInput();
            var input = new MemoryStream();
            await stdin.CopyToAsync(input, ct).ConfigureAwait(false);
            if (input.Length > options.Smtp.MaxMessageBytes)
                return Fail(ExitCodes.DataError, $"message of {input.Length} bytes exceeds Smtp.MaxMessageBytes ({options.Smtp.MaxMessageBytes})");
            var prepared = InjectedMessage.Prepare(input.GetBuffer().AsSpan(0, (int)input.Length), sender, parse.GetValue(fromHeaders), options.Hostname, TimeProvider.System.GetUtcNow());
            var rcpts = (parse.GetValue(recipients) ?? []).Concat(prepared.HeaderRecipients).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            if (rcpts.Count == 0) return Fail(ExitCodes.Usage, "no recipients: name them as arguments or use -t");
            return await SendAsync(options, sender, rcpts, prepared.Message, ct).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> SendAsync(SluiceOptions options, string sender, List<string> rcpts, byte[] message, CancellationToken ct)
    {
        // The first plain smtp listener: submission ones would want TLS and AUTH from a local program.
        var listener = options.Smtp.Listen
            .Select(l => Endpoints.TryParseSmtpListen(l, out var ep, out var role) && role == SmtpRole.Smtp ? ep : null)
            .FirstOrDefault(ep => ep is not null);
        if (listener is not { } ep)
            return Fail(ExitCodes.Config, "Smtp.Listen names no smtp-role address to inject through");
        var host = ep.Address.Equals(System.Net.IPAddress.Any) ? "127.0.0.1" : ep.Address.Equals(System.Net.IPAddress.IPv6Any) ? "::1" : ep.Address.ToString();
        try
        {
            await using var smtp = await SmtpClientConnection.ConnectAsync(host, ep.Port, new SmtpTimeouts { Connect = TimeSpan.FromSeconds(10) }, ct).ConfigureAwait(false);
            await smtp.HelloAsync(options.Hostname, ct).ConfigureAwait(false);
            var replies = await smtp.SendAsync(sender, rcpts, message, ct).ConfigureAwait(false);
            await smtp.QuitAsync().ConfigureAwait(false);
            var refused = rcpts.Zip(replies).Where(r => !r.Second.IsPositive).ToList();
            foreach (var (rcpt, reply) in refused) Console.Error.WriteLine($"sluice: <{rcpt}>: {reply}");
            if (refused.Count == 0) return ExitCodes.Ok;
            return refused.Any(r => !r.Second.IsTransient) ? ExitCodes.DataError : ExitCodes.TempFail;
        }
        catch (SmtpException e)
        {
            return Fail(e.Transient ? ExitCodes.TempFail : ExitCodes.DataError, $"{e.Message} (is `sluice serve` running with this configuration?)");
        }
    }

    private static int Fail(int code, string why)
    {
        Console.Error.WriteLine($"sluice: {why}");
        return code;
    }
}
