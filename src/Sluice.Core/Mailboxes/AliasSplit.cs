// Aliases are expanded where mail enters the queue, through this one function: by the SMTP receiver
// when it accepts a message, and by the scheduler for the reports it writes (a bounce to a sender that
// is an alias, a double bounce to a postmaster that is one), so every message in the queue is addressed
// to final recipients. Each alias's share becomes a message of its own with "Delivered-To: alias" on
// top (qmail's forward mark, which the loop guard reads when the mail comes back) and ORCPT naming the
// alias (RFC 3461 §4.2), so DSNs name what was sent to; what it forwards to other domains gets the
// forwarding sender (SRS when configured), what stays here keeps the original one.
using System.Text;
using Sluice.Core.Mail;

namespace Sluice.Core.Mailboxes;

public static class AliasSplit
{
    public sealed record Part(Envelope Envelope, ReadOnlyMemory<byte> Message);

    /// <summary>
    /// The messages to queue for <paramref name="envelope"/>: itself when no recipient is an alias, else its
    /// direct recipients and one message per alias. A recipient reached twice gets one copy (Postfix's
    /// duplicate elimination); a local recipient that is unknown is left as it is, for delivery to fail.
    /// </summary>
    public static IReadOnlyList<Part> Split(Envelope envelope, ReadOnlyMemory<byte> message, MailboxMap map)
    {
        var recipients = envelope.Recipients;
        SortedDictionary<int, AliasExpansion>? aliases = null;
        for (int i = 0; i < recipients.Count; i++)
            if (map.IsLocal(Address.DomainOf(recipients[i])) && map.Expand(recipients[i]) is { Aliases.Count: > 0 } expansion)
                (aliases ??= [])[i] = expansion;
        if (aliases is null) return [new(envelope, message)];

        var parts = new List<Part>();
        var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        List<string> direct = [];
        List<RecipientDsn> directDsn = [];
        for (int i = 0; i < recipients.Count; i++)
        {
            if (aliases.ContainsKey(i) || !taken.Add(recipients[i])) continue;
            direct.Add(recipients[i]);
            directDsn.Add(envelope.DsnOf(i));
        }
        if (direct.Count > 0) parts.Add(new(envelope.Readdressed(envelope.Sender, direct, envelope.Dsn is null ? null : directDsn), message));

        var forwardingSender = map.ForwardingSender(envelope.Sender);
        foreach (var (i, expansion) in aliases)
        {
            var targets = expansion.Recipients.Where(taken.Add).ToArray();
            if (targets.Length == 0) continue;
            var alias = recipients[i];
            var dsn = envelope.DsnOf(i);
            dsn = dsn with { OriginalRecipient = dsn.OriginalRecipient ?? $"rfc822;{alias}" };
            // A bounce to an SRS address goes back to the sender it stands for as it is: that is no forward.
            var forwarded = map.Srs?.IsRewritten(alias) == true ? message : WithDeliveredTo(alias, message);
            foreach (var leaving in targets.GroupBy(t => forwardingSender != envelope.Sender && !map.IsLocal(Address.DomainOf(t))))
                parts.Add(new(envelope.Readdressed(leaving.Key ? forwardingSender : envelope.Sender, [.. leaving], [.. leaving.Select(_ => dsn)]), forwarded));
        }
        return parts;
    }

    private static ReadOnlyMemory<byte> WithDeliveredTo(string alias, ReadOnlyMemory<byte> message) =>
        MessagePrefix.Join(Encoding.UTF8.GetBytes($"Delivered-To: {alias}\r\n"), message);
}
