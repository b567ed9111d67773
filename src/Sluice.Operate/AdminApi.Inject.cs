// POST /api/v1/inject (KumoMTA's injection API in spirit): a JSON envelope and RFC 5322 content; the
// reply names the queue ids once the message is durable. Missing From, Date and Message-ID are added as
// `sluice inject` adds them; the message then takes the SMTP receive path (LoopbackInjection).
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Sluice.Core.Configuration;
using Sluice.Receive;
using Sluice.Smtp;

namespace Sluice.Operate;

public sealed partial class AdminApi
{
    private static void MapInject(WebApplication app, IServerControl server, SluiceOptions options)
    {
        app.MapPost("/api/v1/inject", async (InjectRequest request, CancellationToken ct) =>
        {
            if (request.Sender is not { } sender) return Results.BadRequest(new ErrorReply("sender: required (\"\" for a null sender, as in a bounce)"));
            if (request.Recipients is not { Count: > 0 } recipients) return Results.BadRequest(new ErrorReply("recipients: at least one address is required"));
            if (recipients.Count > options.Smtp.MaxRecipients)
                return Results.BadRequest(new ErrorReply($"recipients: {recipients.Count} is more than Smtp.MaxRecipients ({options.Smtp.MaxRecipients})"));
            if (string.IsNullOrEmpty(request.Content)) return Results.BadRequest(new ErrorReply("content: the RFC 5322 message is required"));
            var content = Encoding.UTF8.GetBytes(request.Content);
            if (content.Length > options.Smtp.MaxMessageBytes)
                return Results.Json(new ErrorReply($"content: {content.Length} bytes is more than Smtp.MaxMessageBytes ({options.Smtp.MaxMessageBytes})"),
                    QueueJson.Default.ErrorReply, statusCode: StatusCodes.Status413PayloadTooLarge);
            if (server.InjectionEndpoint is not { } listener)
                return Results.Json(new ErrorReply("no smtp listener to inject through (Smtp.Listen)"), QueueJson.Default.ErrorReply, statusCode: StatusCodes.Status503ServiceUnavailable);
            var message = InjectedMessage.Prepare(content, sender, recipientsFromHeaders: false, options.Hostname, DateTimeOffset.UtcNow).Message;
            LoopbackInjection.Outcome outcome;
            try
            {
                outcome = await LoopbackInjection.SendAsync(listener, options.Hostname, sender, recipients, message, ct).ConfigureAwait(false);
            }
            catch (SmtpException e)
            {
                return Results.Json(new ErrorReply(e.Message), QueueJson.Default.ErrorReply, statusCode: StatusCodes.Status503ServiceUnavailable);
            }
            var reply = new InjectReply(outcome.QueueIds, [.. outcome.Refused.Select(r => new RefusedRecipient(r.Recipient, r.Reply.ToString()))]);
            // Nothing queued: 503 when the server may take it later (4xx: a full disk, a quota), 422 when it never will.
            var status = outcome.QueueIds.Count > 0 ? StatusCodes.Status200OK
                : outcome.Refused.Any(r => r.Reply.IsTransient) ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status422UnprocessableEntity;
            return Results.Json(reply, AdminJson.Default.InjectReply, statusCode: status);
        });
    }
}

/// <param name="Sender">The envelope sender; "" for a null sender.</param>
/// <param name="Content">The message as RFC 5322 text; line ends become CRLF.</param>
public sealed record InjectRequest(string? Sender, IReadOnlyList<string>? Recipients, string? Content);

/// <param name="Ids">The queue ids of the durable message (several when aliases split it); empty when nothing was queued.</param>
public sealed record InjectReply(IReadOnlyList<string> Ids, IReadOnlyList<RefusedRecipient> Refused);

public sealed record RefusedRecipient(string Recipient, string Reply);
