// Delivery over SMTP: to the route's host when Routes covers the domain, else to its MX hosts in
// turn (RFC 5321 §5.1), trying the next host or address when one refuses, times out or greets with
// anything but 220. Trouble reaching every one of them, and a DNS lookup that failed for now, are the
// destination's failure (Unavailable), so the scheduler backs off the destination. STARTTLS follows
// Delivery.TlsPolicy for the recipients' domain: opportunistic by default, and a "required" domain's
// mail is deferred rather than ever sent in plaintext or to an unverified certificate. The spooled
// bytes go out unchanged, but for an 8-bit message to a server without 8BITMIME (SevenBitDowngrade).
using Sluice.Core.Configuration;
using Sluice.Core.IO;
using Sluice.Core.Mail;
using Sluice.Smtp;

namespace Sluice.Delivery.Smtp;

/// <param name="sessions">The descriptor budget outbound connections take from, idle pooled ones included (none: unlimited).</param>
/// <param name="self">This server's name and listeners, so an MX host that is us is not delivered to (a loop).</param>
public sealed class SmtpRelayAgent(SmtpRoutes routes, MxResolver mx, string hostname, DeliveryOptions options, TimeProvider time,
    SessionBudget? sessions = null, OwnAddresses? self = null) : IDeliveryAgent
{
    /// <summary>Most addresses tried for one delivery (Postfix's smtp_mx_address_limit): each dead one costs a connect timeout.</summary>
    private const int MaxAddressesTried = 5;

    private readonly SmtpConnectionPool _pool = GivesWayWhenShort(new SmtpConnectionPool(options, time), sessions);
    private readonly DkimSigning _dkim = new(options.Dkim);
    private readonly ConnectionBudget _budget = new(sessions ?? SessionBudget.Unlimited);
    private readonly SmtpTimeouts _timeouts = new()
    {
        Connect = options.ConnectTimeout, Greeting = options.GreetingTimeout, Command = options.CommandTimeout, Mail = options.MailTimeout,
        Rcpt = options.RcptTimeout, DataInit = options.DataInitTimeout, DataBlock = options.DataBlockTimeout, DataTerm = options.DataTermTimeout,
    };

    public string DestinationOf(string domain) => routes.DestinationOf(domain);

    public async Task<RecipientResult[]> DeliverAsync(DeliveryRequest request, CancellationToken ct)
    {
        var tls = options.TlsFor(request.Destination);
        // Connections are pooled per TLS level too: a plaintext one made for another domain must not carry a "required" domain's mail.
        var key = $"{DestinationOf(request.Destination)}/{tls}";
        var signed = _dkim.Sign(request.Message);
        // A pooled connection may have been closed by the peer meanwhile: then a fresh one is opened.
        if (await _pool.TakeAsync(key).ConfigureAwait(false) is { } pooled)
        {
            try
            {
                return await TransactAsync(key, pooled, request, signed, ct).ConfigureAwait(false);
            }
            catch (SmtpException)
            {
                await pooled.DisposeAsync().ConfigureAwait(false);
            }
        }
        var (targets, failure) = await TargetsAsync(request.Destination, ct).ConfigureAwait(false);
        if (failure is not null)
            return request.ForEach(failure.Permanent ? RecipientResult.Failed(failure.Reply) : RecipientResult.Unavailable(failure.Reply));
        var errors = new List<string>(targets.Count);
        var allPermanent = true;
        foreach (var target in targets)
        {
            SmtpClientConnection connection;
            try
            {
                connection = await OpenAsync(target, tls, ct).ConfigureAwait(false);
            }
            catch (SmtpException e)
            {
                errors.Add($"{target}: {e.Message}");
                allPermanent &= !e.Transient;
                continue;
            }
            try
            {
                return await TransactAsync(key, connection, request, signed, ct).ConfigureAwait(false);
            }
            catch (SmtpException e)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                var text = $"{connection.Peer}: {e.Message}";
                return request.ForEach(e.Transient ? RecipientResult.Deferred($"451 4.4.1 {text}") : RecipientResult.Failed($"554 5.4.0 {text}"));
            }
        }
        // Refused, timed out or turned away before a transaction: the destination's trouble, not the recipients'.
        var reason = string.Join("; ", errors);
        return request.ForEach(allPermanent ? RecipientResult.Failed($"554 5.4.0 {reason}") : RecipientResult.Unavailable($"451 4.4.1 {reason}"));
    }

    /// <summary>The route's host, or every address of every MX host in order (at most <see cref="MaxAddressesTried"/>); or why there is none.</summary>
    private async Task<(List<SmtpTarget> Targets, MxLookup? Failure)> TargetsAsync(string domain, CancellationToken ct)
    {
        if (routes.Find(domain) is { } route) return ([new SmtpTarget(route.Host, route.Host, route.Port)], null);
        var lookup = await mx.ResolveAsync(domain, ct).ConfigureAwait(false);
        if (lookup.Hosts.Count == 0) return ([], lookup);
        // A route says where mail goes even to ourselves; MX hosts that are us are not tried (RFC 5321 §5.1).
        if ((self ?? OwnAddresses.None).Before(lookup.Hosts, options.Port) is not { } hosts)
            return ([], MxLookup.Failed($"554 5.4.6 mail for {domain} loops back to myself (an MX host of {domain} is this server)", permanent: true));
        return ([.. hosts.SelectMany(h => h.Addresses.Select(a => new SmtpTarget(h.Name, a.ToString(), options.Port))).Take(MaxAddressesTried)], null);
    }

    /// <summary>
    /// Connects, reads the greeting, says EHLO and starts TLS as <paramref name="tls"/> asks; throws
    /// <see cref="SmtpException"/> for anything short of a session ready for mail.
    /// </summary>
    private async Task<SmtpClientConnection> OpenAsync(SmtpTarget target, OutboundTls tls, CancellationToken ct)
    {
        var slot = await _budget.TakeAsync(ct).ConfigureAwait(false);
        SmtpClientConnection connection;
        try
        {
            connection = await SmtpClientConnection.ConnectAsync(target.Host, target.Port, _timeouts, ct, target.ToString()).ConfigureAwait(false);
        }
        catch
        {
            slot.Dispose();
            throw;
        }
        connection.ReleaseOnClose(slot);
        try
        {
            await connection.HelloAsync(hostname, ct).ConfigureAwait(false);
            if (tls == OutboundTls.None || !connection.StartTls && tls == OutboundTls.Opportunistic) return connection;
            if (!connection.StartTls) throw new SmtpException("TLS is required for this domain (Delivery.TlsPolicy) but the server does not offer STARTTLS", transient: true);
            try
            {
                await connection.StartTlsAsync(target.Name, verify: tls == OutboundTls.Required, ct).ConfigureAwait(false);
            }
            catch (SmtpException) when (tls == OutboundTls.Opportunistic)
            {
                // Opportunistic TLS never costs the delivery: STARTTLS refused (RFC 3207 §4, 454) carries on in
                // plaintext; a failed handshake leaves nothing to talk on, so start again without TLS (Postfix's "may").
                if (connection.Usable) return connection;
                await connection.DisposeAsync().ConfigureAwait(false);
                return await OpenAsync(target, OutboundTls.None, ct).ConfigureAwait(false);
            }
            await connection.HelloAsync(hostname, ct).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// One transaction on an open connection, which goes back to the pool after; throws <see cref="SmtpException"/> when the connection failed.
    /// <paramref name="signed"/> is the request's message with our DKIM signature, when it gets one.
    /// </summary>
    private async Task<RecipientResult[]> TransactAsync(string key, SmtpClientConnection connection, DeliveryRequest request, ReadOnlyMemory<byte> signed, CancellationToken ct)
    {
        if (!connection.SmtpUtf8 && SmtpParameters.NeedsSmtpUtf8(request))
        {
            // RFC 6531 §3.2: without the extension a UTF-8 envelope or header cannot be sent at all.
            await ReturnToPoolAsync(key, connection).ConfigureAwait(false);
            return request.ForEach(RecipientResult.Failed($"553 5.6.7 SMTPUTF8 required but not offered by {connection.Peer}"));
        }
        var (message, note, refusal) = ForServer(request, signed, connection);
        if (refusal is not null)
        {
            await ReturnToPoolAsync(key, connection).ConfigureAwait(false);
            return request.ForEach(RecipientResult.Failed(refusal));
        }
        if (connection.MaxSize is long max && message.Length > max)
        {
            await ReturnToPoolAsync(key, connection).ConfigureAwait(false);
            return request.ForEach(RecipientResult.Failed($"552 5.3.4 message of {message.Length} bytes exceeds {connection.Peer}'s limit of {max}"));
        }
        var replies = await connection.SendAsync(request.Sender, SmtpParameters.ForMail(request, connection), request.Recipients,
            SmtpParameters.ForRecipients(request, connection), message, ct).ConfigureAwait(false);
        await ReturnToPoolAsync(key, connection).ConfigureAwait(false);
        // RFC 3461 §5.2.1/§5.2.2: a next hop with DSN took the notices over; without it, accepted means "relayed".
        var action = connection.Dsn ? SuccessAction.PassedOn : SuccessAction.Relayed;
        return [.. replies.Select(r => ToResult(connection.Peer, r, action, note))];
    }

    /// <summary>
    /// The bytes to send: as spooled (and signed), unless the message is 8-bit and the server lacks 8BITMIME (RFC 6152 §3);
    /// then converted to 7 bits and signed after, so our signature covers what goes out, or refused when it cannot be.
    /// The note says what was done.
    /// </summary>
    private (ReadOnlyMemory<byte> Message, string? Note, string? Refusal) ForServer(DeliveryRequest request, ReadOnlyMemory<byte> signed, SmtpClientConnection connection)
    {
        // RFC 6532 §3.2: an SMTPUTF8 message to a server that took SMTPUTF8 may keep UTF-8 in its header section.
        var utf8Headers = request.Envelope is { SmtpUtf8: true } && connection.SmtpUtf8;
        if (connection.EightBitMime || !SevenBitDowngrade.HasEightBit(request.Message.Span, utf8Headers)) return (signed, null, null);
        var (converted, refusal, note) = SevenBitDowngrade.Convert(request.Message, options.EightBitDkimChoice(), utf8Headers);
        return (converted is { } seven ? _dkim.Sign(seven) : signed, note, refusal);
    }

    /// <summary>
    /// Kept for the next message to the same place, unless a delivery waits for its descriptor (<see cref="ConnectionBudget"/>).
    /// A connection closed is awaited: the destination counts it until it is gone, and the delivery's slot is given back after.
    /// </summary>
    private Task ReturnToPoolAsync(string key, SmtpClientConnection connection) =>
        _budget.HasWaiters ? connection.QuitAsync() : _pool.ReturnAsync(key, connection);

    /// <summary>A delivery waits for an outbound connection because the budget's are all open.</summary>
    internal bool WaitingForConnection => _budget.HasWaiters;

    private static RecipientResult ToResult(string peer, SmtpReply reply, SuccessAction action, string? note)
    {
        var remote = new RemoteReply(peer, reply.ToString());
        var text = remote + (note is null ? "" : $" ({note})");
        var result = reply.Code < 400 ? RecipientResult.Delivered(text, action)
            : reply.Code == SmtpClientConnection.ClosingCode ? RecipientResult.Unavailable(text)
            : reply.Code < 500 ? RecipientResult.Deferred(text)
            : RecipientResult.Failed(text);
        return result with { Remote = remote }; // a DSN reports the reply itself, and the MTA that gave it
    }

    public ValueTask DisposeAsync() => _pool.DisposeAsync();

    /// <summary>An idle pooled connection holds a slot of the shared budget: a client turned away, or a delivery or DNS query waiting, closes one.</summary>
    private static SmtpConnectionPool GivesWayWhenShort(SmtpConnectionPool pool, SessionBudget? sessions)
    {
        if (sessions is not null) sessions.CloseAnIdleConnection = pool.CloseOneIdle;
        return pool;
    }

    /// <summary>One place to connect to: <paramref name="Host"/> is the address (or the route's host name), <paramref name="Name"/> the MX host's name.</summary>
    private readonly record struct SmtpTarget(string Name, string Host, int Port)
    {
        public override string ToString() => Name == Host ? $"{Host}:{Port}" : $"{Name}[{Host}]:{Port}";
    }
}
