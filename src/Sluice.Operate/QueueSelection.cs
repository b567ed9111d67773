// Which messages a `sluice queue` verb acts on: ids, or a filter (--destination, --older-than,
// --sender) that every selected message meets. Read from the admin API's query string, so the
// CLI and any HTTP client select the same way.
using System.Globalization;
using Microsoft.AspNetCore.Http;
using Sluice.Core.Mail;
using Sluice.Queue;

namespace Sluice.Operate;

/// <param name="Destination">A pending recipient's domain (case-insensitive).</param>
/// <param name="Sender">The envelope sender: an address, a domain for any sender there, or "&lt;&gt;" for the null sender.</param>
/// <param name="All">Every message: bulk actions ask for it explicitly, never by leaving the filter out.</param>
public sealed record QueueSelection(IReadOnlyList<string> Ids, string? Destination, TimeSpan? OlderThan, string? Sender, bool All)
{
    public bool IsEmpty => Ids.Count == 0 && Destination is null && OlderThan is null && Sender is null && !All;

    /// <summary>Whether the envelope must be read to decide (the age and ids are known without it).</summary>
    public bool NeedsEnvelope => Destination is not null || Sender is not null;

    public static bool TryRead(IQueryCollection query, out QueueSelection selection, out string error)
    {
        selection = null!;
        error = "";
        TimeSpan? olderThan = null;
        if (query["older-than"].FirstOrDefault() is { } age)
        {
            if (!TryParseAge(age, out var t))
            {
                error = $"--older-than: \"{age}\" is not an age (e.g. 90s, 30m, 2h, 5d)";
                return false;
            }
            olderThan = t;
        }
        var ids = query["id"].Where(i => !string.IsNullOrEmpty(i)).Select(i => i!).ToList();
        if (ids.FirstOrDefault(i => !SpooledMessage.TryParseId(i, out _, out _)) is { } bad)
        {
            error = $"\"{bad}\" is not a queue id (queue.sequence, as `sluice queue list` prints it)";
            return false;
        }
        selection = new QueueSelection(ids, Blank(query["destination"].FirstOrDefault()), olderThan,
            Blank(query["sender"].FirstOrDefault()), query["all"].FirstOrDefault() is "true" or "1");
        return true;
    }

    private static string? Blank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();

    /// <summary>An age as an operator writes it: a number and s, m, h or d (seconds without a unit).</summary>
    public static bool TryParseAge(string text, out TimeSpan age)
    {
        age = default;
        text = text.Trim();
        if (text.Length == 0) return false;
        var unit = char.ToLowerInvariant(text[^1]);
        var scale = unit switch { 's' => 1, 'm' => 60, 'h' => 3600, 'd' => 86400, _ => 0 };
        var number = scale == 0 ? text : text[..^1];
        if (scale == 0) scale = 1;
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n) || n * scale > TimeSpan.MaxValue.TotalSeconds / 2)
            return false;
        age = TimeSpan.FromSeconds(n * scale);
        return true;
    }

    /// <summary>Whether a message passes the part of the filter known without its envelope.</summary>
    public bool MatchesState(SpooledMessage m, DateTimeOffset now) =>
        m.PendingRecipients > 0 && (OlderThan is not { } age || now - m.ReceivedAt >= age);

    public bool MatchesEnvelope(QueuedMessage m)
    {
        if (Sender is { } s && !SenderMatches(m.Sender, s)) return false;
        if (Destination is not { } d) return true;
        for (int i = 0; i < m.Recipients.Count; i++)
            if (m.States[i].Status == RecipientStatus.Pending && string.Equals(Address.DomainOf(m.Recipients[i]), d, StringComparison.OrdinalIgnoreCase))
                return true;
        return false;
    }

    private static bool SenderMatches(string sender, string wanted) =>
        wanted == "<>" ? sender.Length == 0
        : !wanted.Contains('@') ? string.Equals(Address.DomainOf(sender), wanted, StringComparison.OrdinalIgnoreCase)
        : string.Equals(sender, wanted.Trim('<', '>'), StringComparison.OrdinalIgnoreCase);
}
