// `sluice setqload` (indimail's setqload): change the running server's queue count, maximum, load threshold
// or mode, or disable one queue (it takes no more mail, drains and retires), without a restart. The change
// lasts until the server stops or reloads its configuration; put it in the file to keep it.
using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using Sluice.Core.Configuration;
using Sluice.Operate;

namespace Sluice.Verbs;

internal static class SetqloadVerb
{
    public static Command Create(Option<string?> config)
    {
        var count = new Option<int?>("--count") { Description = "Queues taking mail (dynamic: the least)" };
        var max = new Option<int?>("--max") { Description = "Most queues in dynamic mode" };
        var load = new Option<double?>("--load") { Description = "Average load (slots in use / slots) at which a queue is added" };
        var dynamic = new Option<bool?>("--dynamic") { Description = "true: grow and shrink with load; false: exactly --count queues" };
        var idle = new Option<string?>("--idle-retire") { Description = "How long a queue beyond --count may be without load before it retires (e.g. 5m)" };
        var disable = new Option<int?>("--disable") { Description = "Queue number that stops taking mail, drains and retires" };
        var command = new Command("setqload", "Change the running server's queues: count, max, load threshold, mode, or disable one (no restart)")
            { count, max, load, dynamic, idle, disable };
        command.SetAction(async (parse, ct) =>
        {
            var options = ConfigOption.Load(parse.GetValue(config));
            if (options is null) return ExitCodes.Config;
            TimeSpan? idleRetire = null;
            if (parse.GetValue(idle) is { } text)
            {
                if (!Duration.TryParse(text, out var d))
                {
                    Console.Error.WriteLine($"setqload: --idle-retire: \"{text}\" is not a duration such as 90s or 5m");
                    return ExitCodes.Usage;
                }
                idleRetire = d;
            }
            using var client = new AdminClient(options);
            var http = client.Http;
            try
            {
                using var reply = parse.GetValue(disable) is { } number
                    ? await http.PostAsync($"api/v1/queues/{number}/disable", null, ct)
                    : await http.PostAsJsonAsync("api/v1/queues/settings", new QueueChange(parse.GetValue(dynamic), parse.GetValue(count),
                        parse.GetValue(max), parse.GetValue(load), idleRetire), AdminJson.Default.QueueChange, ct);
                if (!await AdminClient.SucceededAsync(reply, "setqload", ct)) return ExitCodes.Usage;
                Console.Write(Render((await reply.Content.ReadFromJsonAsync(AdminJson.Default.ServerStatus, ct))!));
                return ExitCodes.Ok;
            }
            catch (HttpRequestException e)
            {
                Console.Error.WriteLine($"setqload: {client.Unreachable(e)}");
                return ExitCodes.Unavailable;
            }
        });
        return command;
    }

    private static string Render(ServerStatus s) => string.Create(CultureInfo.InvariantCulture,
        $"""
        queues {(s.Scaling.Dynamic ? "dynamic" : "fixed")} count {s.Scaling.Count} max {s.Scaling.Max} load {s.Scaling.Load:0.00} idle-retire {s.Scaling.IdleRetire.TotalSeconds:0}s
        taking mail: {string.Join(" ", s.Queues.Select(q => q.Name).Except(s.Draining))}
        draining: {string.Join(" ", s.Draining)}

        """);
}
