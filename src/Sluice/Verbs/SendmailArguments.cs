// sendmail(8)'s command line, parsed by hand: its syntax is not System.CommandLine's (-oi and -oem are one
// option each, -fADDR and -f ADDR mean the same, -bs is a mode, not -b with "s", letters bundle as in -ti,
// and option parsing stops at the first recipient as getopt(3) does), and callers never ask for --help.
namespace Sluice.Verbs;

internal enum SendmailMode
{
    /// <summary>-bm (the default): queue the message on stdin.</summary>
    Queue,
    /// <summary>-bs: speak SMTP on stdin and stdout.</summary>
    Smtp,
    /// <summary>-bp, or invoked as mailq: list the queue.</summary>
    ListQueue,
    /// <summary>-q: retry the deferred mail now.</summary>
    Flush,
}

/// <param name="Config">--config FILE or -C FILE; null: SLUICE_CONFIG, else /etc/sluice/sluice.json.</param>
internal sealed record SendmailArguments(SendmailMode Mode, string? Sender, string? SenderName, bool RecipientsFromHeaders, bool Verbose,
    string? Config, IReadOnlyList<string> Recipients)
{
    /// <summary>The arguments, or why they cannot be honoured (for exit 64).</summary>
    public static SendmailArguments? Parse(IReadOnlyList<string> args, out string? error)
    {
        var parsed = new SendmailArguments(SendmailMode.Queue, null, null, false, false, null, []);
        error = null;
        int i = 0;
        // An option's value: the rest of the argument (-fADDR) or the next one (-f ADDR).
        string? Value(string arg, int prefix)
        {
            if (arg.Length > prefix) return arg[prefix..];
            return ++i < args.Count ? args[i] : null;
        }
        for (; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--") { i++; break; }
            if (arg.Length < 2 || arg[0] != '-') break;
            switch (arg[1])
            {
                case 'f' or 'r': // -r is sendmail's old spelling of -f
                    parsed = parsed with { Sender = Value(arg, 2) ?? Missing(arg, ref error) };
                    break;
                case 'F':
                    parsed = parsed with { SenderName = Value(arg, 2) ?? Missing(arg, ref error) };
                    break;
                case 'C':
                    parsed = parsed with { Config = Value(arg, 2) ?? Missing(arg, ref error) };
                    break;
                case '-' when arg == "--config":
                    parsed = parsed with { Config = Value(arg, arg.Length) ?? Missing(arg, ref error) };
                    break;
                case 'b':
                    SendmailMode? mode = arg switch { "-bm" => SendmailMode.Queue, "-bs" => SendmailMode.Smtp, "-bp" => SendmailMode.ListQueue, _ => null };
                    if (mode is null) return Refuse($"{arg}: only -bm, -bs and -bp are supported (run `sluice serve` for a daemon)", out error);
                    parsed = parsed with { Mode = mode.Value };
                    break;
                case 'q' when arg == "-q":
                    parsed = parsed with { Mode = SendmailMode.Flush };
                    break;
                case 'q':
                    return Refuse($"{arg}: only a plain -q (retry now) is supported; `sluice serve` retries on its own schedule", out error);
                // -oi, -oem, -odb, -odq and every other -oXvalue: sendmail's options file settings, ignored as
                // sendmail ignores the ones it does not know; -O Name=value is their long form.
                case 'o':
                    break;
                case 'O':
                    if (Value(arg, 2) is null) Missing(arg, ref error);
                    break;
                // -B 7BIT|8BITMIME (mutt's use_8bitmime): the server takes 8-bit bodies either way.
                case 'B':
                    if (Value(arg, 2) is null) Missing(arg, ref error);
                    break;
                case 't' or 'i' or 'v' when arg[1..].All(c => c is 't' or 'i' or 'v'):
                    parsed = parsed with
                    {
                        RecipientsFromHeaders = parsed.RecipientsFromHeaders || arg.Contains('t'),
                        Verbose = parsed.Verbose || arg.Contains('v'),
                    };
                    break;
                default:
                    return Refuse($"{arg}: a sendmail option sluice does not support", out error);
            }
            if (error is not null) return null;
        }
        return parsed with { Recipients = [.. args.Skip(i)] };
    }

    private static string? Missing(string arg, ref string? error)
    {
        error = $"{arg}: the option needs a value";
        return null;
    }

    private static SendmailArguments? Refuse(string why, out string error)
    {
        error = why;
        return null;
    }
}
