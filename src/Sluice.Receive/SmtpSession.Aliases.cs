// Aliases are expanded when a message is accepted (AliasSplit, the one place that does it), so
// forwarding to remote addresses goes through the queue like any other mail; and the loop guard.
using Sluice.Core.Mail;
using Sluice.Core.Mailboxes;
using Sluice.Queue;

namespace Sluice.Receive;

public sealed partial class SmtpSession
{
    /// <summary>The RCPTs that are aliases, with what they expand to; null while there are none (the common case).</summary>
    private Dictionary<string, AliasExpansion>? _aliases;

    /// <summary>
    /// Spools the message: once as it came, or split into the direct recipients and one message per alias,
    /// handed over together so that they usually share one group commit. They are still not one commit:
    /// if one fails the client is told 451 and its retry duplicates the parts that were made durable
    /// (at least once, never lost); making them atomic would need a group record the spool's replay honours.
    /// </summary>
    private async Task<IReadOnlyList<QueuedMessage>> AcceptAsync(ReadOnlyMemory<byte> message, CancellationToken ct)
    {
        var envelope = BuildEnvelope([.. _recipients], _dsn is null ? null : [.. _dsn]);
        if (_aliases is null) return [await _context.Acceptor.AcceptAsync(envelope, ReceivedHeader, message, ct).ConfigureAwait(false)];
        // Split with no message, each part's bytes are only the lines the split puts on top (an alias's Delivered-To):
        // they go above our Received, which names the part's own queue id, and the message is not copied per part.
        return await Task.WhenAll(AliasSplit.Split(envelope, ReadOnlyMemory<byte>.Empty, _policy.Mailboxes)
            .Select(part => _context.Acceptor.AcceptAsync(part.Envelope, id => MessagePrefix.Join(part.Message, ReceivedHeader(id)), message, ct))).ConfigureAwait(false);
    }


    /// <summary>
    /// qmail's loop guard: a message that already carries "Delivered-To:" naming one of our local recipients
    /// or aliases has been here before and would go round again; refused whole with 554 5.4.6 (RFC 3463).
    /// </summary>
    private string? LoopRefusal(ReadOnlySpan<byte> message)
    {
        var ours = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var rcpt in _recipients)
        {
            if (_aliases?.GetValueOrDefault(rcpt) is { } expansion) ours.UnionWith(expansion.Aliases.Concat(expansion.Recipients.Where(r => _policy.Mailboxes.IsLocal(Address.DomainOf(r)))));
            else if (_policy.Mailboxes.IsLocal(Address.DomainOf(rcpt))) ours.Add(rcpt);
        }
        if (ours.Count == 0) return null;
        // Compared in canonical form: a "Delivered-To: \"alice\"@d" another MTA wrote names alice@d too.
        foreach (var address in DeliveredTo.Addresses(message))
            if (ours.Contains(Address.Canonical(address))) return $"554 5.4.6 <{Quote(address)}>: message is looping: it already has a Delivered-To line for this address";
        return null;
    }
}
