// Aliases are expanded when a message is accepted, so forwarding to remote addresses goes through the
// queue like any other mail and keeps the original envelope sender. Each alias's share is spooled as a
// message of its own with "Delivered-To: alias" on top (qmail's forward mark, which the loop guard reads
// when the mail comes back) and ORCPT naming the alias (RFC 3461 §4.2), so DSNs name what was sent to.
using System.Text;
using Sluice.Core.Mail;
using Sluice.Core.Mailboxes;
using Sluice.Queue;

namespace Sluice.Receive;

public sealed partial class SmtpSession
{
    /// <summary>The RCPTs that are aliases, with what they expand to; null while there are none (the common case).</summary>
    private Dictionary<string, AliasExpansion>? _aliases;

    /// <summary>
    /// Spools the message: once as it came, or split into the direct recipients and one message per alias.
    /// The parts are not one commit: if a later one fails the client is told 451 and its retry may
    /// duplicate the earlier parts (at least once, never lost).
    /// </summary>
    private async Task<IReadOnlyList<QueuedMessage>> AcceptAsync(ReadOnlyMemory<byte> message, CancellationToken ct)
    {
        if (_aliases is null) return [await _context.Acceptor.AcceptAsync(BuildEnvelope([.. _recipients], _dsn is null ? null : [.. _dsn]), message, ct).ConfigureAwait(false)];
        var queued = new List<QueuedMessage>();
        var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        List<string> direct = [];
        List<RecipientDsn> directDsn = [];
        for (int i = 0; i < _recipients.Count; i++)
        {
            if (_aliases.ContainsKey(_recipients[i]) || !taken.Add(_recipients[i])) continue;
            direct.Add(_recipients[i]);
            directDsn.Add(DsnAt(i));
        }
        if (direct.Count > 0)
            queued.Add(await _context.Acceptor.AcceptAsync(BuildEnvelope(direct, _dsn is null ? null : directDsn), message, ct).ConfigureAwait(false));
        for (int i = 0; i < _recipients.Count; i++)
        {
            if (!_aliases.TryGetValue(_recipients[i], out var expansion)) continue;
            // A recipient reached directly or through an earlier alias gets one copy (Postfix's duplicate elimination).
            var targets = expansion.Recipients.Where(taken.Add).ToArray();
            if (targets.Length == 0) continue;
            var dsn = DsnAt(i);
            dsn = dsn with { OriginalRecipient = dsn.OriginalRecipient ?? $"rfc822;{_recipients[i]}" };
            var forwarded = new byte[Encoding.UTF8.GetByteCount(_recipients[i]) + message.Length + 16];
            var n = Encoding.UTF8.GetBytes($"Delivered-To: {_recipients[i]}\r\n", forwarded);
            message.Span.CopyTo(forwarded.AsSpan(n));
            queued.Add(await _context.Acceptor.AcceptAsync(BuildEnvelope(targets, [.. targets.Select(_ => dsn)]), forwarded.AsMemory(0, n + message.Length), ct).ConfigureAwait(false));
        }
        return queued;
    }

    private RecipientDsn DsnAt(int recipient) => _dsn is { } d ? d[recipient] : default;

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
        foreach (var address in DeliveredTo.Addresses(message))
            if (ours.Contains(address)) return $"554 5.4.6 <{Quote(address)}>: message is looping: it already has a Delivered-To line for this address";
        return null;
    }
}
