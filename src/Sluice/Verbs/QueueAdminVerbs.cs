// `sluice queue list|show|hold|release|delete|bounce|shape` and `queue flush` with ids or a filter:
// each asks the running server's admin API (Unix socket in DataDir) and prints its answer.
// No server answering is exit 69; an id not in the queue is exit 1 after the others are done.
using System.CommandLine;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Sluice.Core.Configuration;
using Sluice.Operate;

namespace Sluice.Verbs;

internal static class QueueAdminVerbs
{
    private static readonly Option<string?> Destination = new("--destination") { Description = "Only messages with a pending recipient in this domain" };
    private static readonly Option<string?> OlderThan = new("--older-than") { Description = "Only messages queued at least this long (90s, 30m, 2h, 5d)" };
    private static readonly Option<string?> Sender = new("--sender") { Description = "Only messages from this sender (an address, a domain, or <> for bounces)" };
    private static readonly Option<bool> All = new("--all") { Description = "Every message in the queues" };
    private static readonly Argument<string[]> Ids = new("id") { Description = "Queue ids, as `sluice queue list` prints them", Arity = ArgumentArity.ZeroOrMore };

    public static Command List(Option<string?> config)
    {
        var command = new Command("list", "One line per queued message: id, age, size, sender, pending recipients, next try, last error")
            { Destination, OlderThan, Sender };
        command.SetAction((parse, ct) => RunAsync(parse, config, "queue list", (http, query) => PrintListAsync(http, query, ct)));
        return command;
    }

    /// <summary>`queue list` of every message, as sendmail -bp / mailq print the queue.</summary>
    public static Task<int> ListAllAsync(SluiceOptions options, string verb, CancellationToken ct) =>
        WithClientAsync(options, verb, http => PrintListAsync(http, "", ct));

    private static async Task<int> PrintListAsync(HttpClient http, string query, CancellationToken ct)
    {
        using var response = await http.GetAsync($"api/v1/queue/messages?{query}", HttpCompletionOption.ResponseHeadersRead, ct);
        if (!await AdminClient.SucceededAsync(response, "queue list", ct)) return ExitCodes.Usage;
        using var lines = new StreamReader(await response.Content.ReadAsStreamAsync(ct), Encoding.UTF8);
        var now = DateTimeOffset.UtcNow;
        int messages = 0, pending = 0;
        while (await lines.ReadLineAsync(ct) is { } line)
        {
            var m = JsonSerializer.Deserialize(line, QueueJson.Default.MessageSummary)!;
            Console.WriteLine(QueueText.Line(m, now));
            messages++;
            pending += m.Pending.Count;
        }
        Console.WriteLine($"-- {messages} messages, {pending} recipients pending");
        return ExitCodes.Ok;
    }

    public static Command Show(Option<string?> config)
    {
        var id = new Argument<string>("id") { Description = "The queue id, as `sluice queue list` prints it" };
        var command = new Command("show", "A message's envelope, each recipient's state and tries, and its headers") { id };
        command.SetAction((parse, ct) => RunAsync(parse, config, "queue show", async (http, _) =>
        {
            using var response = await http.GetAsync($"api/v1/queue/messages/{Uri.EscapeDataString(parse.GetValue(id)!)}", ct);
            if (!await AdminClient.SucceededAsync(response, "queue show", ct)) return 1;
            var detail = (await response.Content.ReadFromJsonAsync(QueueJson.Default.MessageDetail, ct))!;
            Console.Write(QueueText.Show(detail, DateTimeOffset.UtcNow));
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>hold, release, delete or bounce; also flush when given ids or a filter.</summary>
    public static Command Action(Option<string?> config, string action, string description)
    {
        var command = new Command(action, description) { Ids, Destination, OlderThan, Sender, All };
        command.SetAction((parse, ct) => Act(parse, config, action, ct));
        return command;
    }

    public static bool HasSelection(ParseResult parse) =>
        (parse.GetValue(Ids)?.Length ?? 0) > 0 || parse.GetValue(Destination) is not null || parse.GetValue(OlderThan) is not null
        || parse.GetValue(Sender) is not null || parse.GetValue(All);

    public static void AddSelection(Command command)
    {
        command.Arguments.Add(Ids);
        foreach (var o in new Option[] { Destination, OlderThan, Sender, All }) command.Options.Add(o);
    }

    public static Task<int> Act(ParseResult parse, Option<string?> config, string action, CancellationToken ct) =>
        RunAsync(parse, config, $"queue {action}", async (http, query) =>
        {
            using var response = await http.PostAsync($"api/v1/queue/{action}?{query}", null, ct);
            if (!await AdminClient.SucceededAsync(response, $"queue {action}", ct)) return ExitCodes.Usage;
            var reply = (await response.Content.ReadFromJsonAsync(QueueJson.Default.QueueActionReply, ct))!;
            foreach (var id in reply.NotFound) Console.Error.WriteLine($"queue {action}: no message {id} is in the queue");
            var done = action switch
            {
                "hold" => $"{reply.Changed} held",
                "release" => $"{reply.Changed} released",
                "delete" => $"{reply.Changed} deleted ({reply.Recipients} recipients, no bounce sent)",
                "bounce" => $"{reply.Changed} bounced ({reply.Recipients} recipients returned to their senders)",
                _ => $"{reply.Changed} due now",
            };
            Console.WriteLine($"queue {action}: {reply.Matched} messages matched, {done}");
            return reply.NotFound.Count > 0 ? 1 : ExitCodes.Ok;
        });

    public static Command Shape(Option<string?> config)
    {
        var bySender = new Option<bool>("--by-sender") { Description = "Messages by sender domain instead of pending recipients by recipient domain" };
        var buckets = new Option<int>("--buckets") { Description = "Age buckets (the last is open)", DefaultValueFactory = _ => 10 };
        var minutes = new Option<int>("--bucket-minutes") { Description = "The first bucket's age in minutes; each next one doubles", DefaultValueFactory = _ => 5 };
        var command = new Command("shape", "Queued mail by domain and age bucket, like Postfix's qshape") { bySender, buckets, minutes, Destination, OlderThan, Sender };
        command.SetAction((parse, ct) => RunAsync(parse, config, "queue shape", async (http, query) =>
        {
            var url = $"api/v1/queue/shape?{query}&buckets={parse.GetValue(buckets)}&bucket-minutes={parse.GetValue(minutes)}"
                + (parse.GetValue(bySender) ? "&by=sender" : "");
            using var response = await http.GetAsync(url, ct);
            if (!await AdminClient.SucceededAsync(response, "queue shape", ct)) return ExitCodes.Usage;
            Console.Write(QueueText.Shape((await response.Content.ReadFromJsonAsync(QueueJson.Default.QueueShape, ct))!));
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static async Task<int> RunAsync(ParseResult parse, Option<string?> config, string verb, Func<HttpClient, string, Task<int>> run)
    {
        var options = ConfigOption.Load(parse.GetValue(config));
        if (options is null) return ExitCodes.Config;
        if (parse.GetValue(OlderThan) is { } age && !QueueSelection.TryParseAge(age, out _))
        {
            Console.Error.WriteLine($"{verb}: --older-than: \"{age}\" is not an age (e.g. 90s, 30m, 2h, 5d)");
            return ExitCodes.Usage;
        }
        var query = Query(parse);
        return await WithClientAsync(options, verb, http => run(http, query));
    }

    private static async Task<int> WithClientAsync(SluiceOptions options, string verb, Func<HttpClient, Task<int>> run)
    {
        using var client = new AdminClient(options);
        client.Http.Timeout = Timeout.InfiniteTimeSpan; // a bulk action over a large queue takes as long as it takes
        try
        {
            return await run(client.Http);
        }
        catch (HttpRequestException e)
        {
            Console.Error.WriteLine($"{verb}: {client.Unreachable(e)}");
            return ExitCodes.Unavailable;
        }
    }

    private static string Query(ParseResult parse)
    {
        var query = new List<string>();
        foreach (var id in parse.GetValue(Ids) ?? []) query.Add($"id={Uri.EscapeDataString(id)}");
        void Add(string key, string? value)
        {
            if (value is not null) query.Add($"{key}={Uri.EscapeDataString(value)}");
        }
        Add("destination", parse.GetValue(Destination));
        Add("older-than", parse.GetValue(OlderThan));
        Add("sender", parse.GetValue(Sender));
        if (parse.GetValue(All)) query.Add("all=true");
        return string.Join('&', query);
    }
}
