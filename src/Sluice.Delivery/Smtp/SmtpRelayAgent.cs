// Delivery over SMTP to the route's host for the recipients' domain. MX resolution is not here
// yet: a domain with no route is deferred with a clear reason, never dropped. Refused or timed-out
// connections and 421s are marked as the destination's failure, so the scheduler can back off.
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Smtp;

namespace Sluice.Delivery.Smtp;

public sealed class SmtpRelayAgent(SmtpRoutes routes, string hostname, DeliveryOptions options, TimeProvider time) : IDeliveryAgent
{
    private readonly SmtpConnectionPool _pool = new(options, time);

    public string DestinationOf(string domain) => routes.DestinationOf(domain);

    public async Task<RecipientResult[]> DeliverAsync(DeliveryRequest request, CancellationToken ct)
    {
        if (routes.Find(request.Destination) is not { } route)
            return Each(request, RecipientResult.Deferred($"451 4.4.3 no route for {request.Destination} (MX delivery is not available yet; add a Routes entry)"));
        var key = SmtpRoutes.KeyOf(route);
        // A pooled connection may have been closed by the peer meanwhile: one retry on a fresh one.
        for (int attempt = 0; ; attempt++)
        {
            var reused = _pool.TryTake(key, out var connection);
            var connecting = !reused;
            try
            {
                if (!reused)
                {
                    connection = await SmtpClientConnection.ConnectAsync(route.Host, route.Port, options.ConnectTimeout, options.CommandTimeout, ct).ConfigureAwait(false);
                    await connection.HelloAsync(hostname, ct).ConfigureAwait(false);
                }
                connecting = false;
                if (connection.MaxSize is long max && request.Message.Length > max)
                {
                    _pool.Return(key, connection);
                    return Each(request, RecipientResult.Failed($"552 5.3.4 message of {request.Message.Length} bytes exceeds {key}'s limit of {max}"));
                }
                if (!connection.SmtpUtf8 && SmtpParameters.NeedsSmtpUtf8(request))
                {
                    // RFC 6531 §3.2: without the extension a UTF-8 envelope or header cannot be sent at all.
                    _pool.Return(key, connection);
                    return Each(request, RecipientResult.Failed($"553 5.6.7 SMTPUTF8 required but not offered by {key}"));
                }
                var replies = await connection.SendAsync(request.Sender, SmtpParameters.ForMail(request, connection), request.Recipients,
                    SmtpParameters.ForRecipients(request, connection), request.Message, ct).ConfigureAwait(false);
                _pool.Return(key, connection);
                // RFC 3461 §5.2.1/§5.2.2: a next hop with DSN took the notices over; without it, accepted means "relayed".
                var action = connection.Dsn ? SuccessAction.PassedOn : SuccessAction.Relayed;
                return [.. replies.Select(r => ToResult(key, r, action))];
            }
            catch (SmtpException e)
            {
                if (connection is not null) await connection.DisposeAsync().ConfigureAwait(false);
                if (reused && attempt == 0) continue;
                var text = $"{key}: {e.Message}";
                // Refused, timed out or turned away before a transaction: the destination's trouble, not the recipients'.
                return Each(request, !e.Transient ? RecipientResult.Failed($"554 5.4.0 {text}")
                    : connecting ? RecipientResult.Unavailable($"451 4.4.1 {text}")
                    : RecipientResult.Deferred($"451 4.4.1 {text}"));
            }
        }
    }

    private static RecipientResult ToResult(string host, SmtpReply reply, SuccessAction action)
    {
        var text = $"{host} said: {reply}";
        return reply.Code < 400 ? RecipientResult.Delivered(text, action)
            : reply.Code == SmtpClientConnection.ClosingCode ? RecipientResult.Unavailable(text)
            : reply.Code < 500 ? RecipientResult.Deferred(text)
            : RecipientResult.Failed(text);
    }

    private static RecipientResult[] Each(DeliveryRequest request, RecipientResult result) =>
        [.. Enumerable.Repeat(result, request.Recipients.Count)];

    public ValueTask DisposeAsync() => _pool.DisposeAsync();
}
