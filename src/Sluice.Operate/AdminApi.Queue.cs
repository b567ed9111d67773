// The queue endpoints of the admin API, behind `sluice queue`:
//   GET  /api/v1/queue/messages?destination=&older-than=&sender=   one JSON object per line (NDJSON), streamed
//   GET  /api/v1/queue/messages/{id}                                envelope, recipients' states, headers
//   POST /api/v1/queue/{hold|release|delete|bounce|flush}?id=..&destination=&older-than=&sender=&all=true
//   GET  /api/v1/queue/shape?by=sender&buckets=10&bucket-minutes=5  Postfix qshape's table
// A plain POST /api/v1/queue/flush (no ids, no filter) retries all deferred mail, as SIGALRM does.
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Sluice.Operate;

public sealed partial class AdminApi
{
    private static void MapQueue(IEndpointRouteBuilder app, IServerControl server)
    {
        var admin = new QueueAdmin(server.Schedulers, TimeProvider.System);
        app.MapGet("/api/v1/queue/messages", async (HttpContext http) =>
        {
            if (!QueueSelection.TryRead(http.Request.Query, out var selection, out var error)) return BadRequest(error);
            http.Response.ContentType = "application/x-ndjson";
            var body = http.Response.Body;
            await foreach (var m in admin.ListAsync(selection, http.RequestAborted))
            {
                await System.Text.Json.JsonSerializer.SerializeAsync(body, m, QueueJson.Default.MessageSummary, http.RequestAborted);
                await body.WriteAsync(NewLine, http.RequestAborted);
            }
            return Results.Empty;
        });
        app.MapGet("/api/v1/queue/messages/{id}", async (string id, HttpContext http) =>
            await admin.ShowAsync(id, http.RequestAborted) is { } detail
                ? Results.Json(detail, QueueJson.Default.MessageDetail)
                : Results.Json(new ErrorReply($"no message {id} is in the queue"), QueueJson.Default.ErrorReply, statusCode: StatusCodes.Status404NotFound));
        app.MapPost("/api/v1/queue/{action}", async (string action, HttpContext http) =>
        {
            if (!QueueAdmin.Actions.Contains(action)) return Results.Json(new ErrorReply($"unknown queue action \"{action}\""), QueueJson.Default.ErrorReply, statusCode: 404);
            if (!QueueSelection.TryRead(http.Request.Query, out var selection, out var error)) return BadRequest(error);
            if (selection.IsEmpty)
            {
                if (action != "flush") return BadRequest($"{action}: name messages by id or give a filter (--destination, --older-than, --sender, or --all)");
                server.Flush();
                return Results.Ok(new FlushReply("deferred mail is due now"));
            }
            return Results.Json(await admin.ActAsync(action, selection), QueueJson.Default.QueueActionReply);
        });
        app.MapGet("/api/v1/queue/shape", async (HttpContext http) =>
        {
            if (!QueueSelection.TryRead(http.Request.Query, out var selection, out var error)) return BadRequest(error);
            var q = http.Request.Query;
            if (!TryInt(q["buckets"], 10, 2, 30, out var buckets)) return BadRequest("buckets: a whole number from 2 to 30");
            if (!TryInt(q["bucket-minutes"], 5, 1, 1440, out var minutes)) return BadRequest("bucket-minutes: a whole number from 1 to 1440");
            var shape = await admin.ShapeAsync(selection, q["by"] == "sender", minutes, buckets, http.RequestAborted);
            return Results.Json(shape, QueueJson.Default.QueueShape);
        });
    }

    private static readonly ReadOnlyMemory<byte> NewLine = "\n"u8.ToArray();

    private static IResult BadRequest(string error) => Results.Json(new ErrorReply(error), QueueJson.Default.ErrorReply, statusCode: StatusCodes.Status400BadRequest);

    private static bool TryInt(string? text, int fallback, int min, int max, out int value)
    {
        value = fallback;
        return string.IsNullOrEmpty(text) || (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out value) && value >= min && value <= max);
    }
}
