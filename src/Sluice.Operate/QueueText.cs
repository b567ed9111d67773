// How `sluice queue list|show|shape` print the admin API's answers: plain text, one line per
// message for list (greppable, like mailq), a labelled block for show, qshape's table for shape.
using System.Globalization;
using System.Text;

namespace Sluice.Operate;

public static class QueueText
{
    /// <summary>id, age, size, sender, pending recipients, next try, last error: one line.</summary>
    public static string Line(MessageSummary m, DateTimeOffset now)
    {
        var text = new StringBuilder().Append(CultureInfo.InvariantCulture, $"{m.Id} age {Age(now - m.ReceivedAt)} size {m.Size} from <{m.Sender}>");
        text.Append(CultureInfo.InvariantCulture, $" pending {m.Pending.Count}/{m.Recipients} {string.Join(" ", m.Pending.Select(r => $"<{r}>"))}");
        text.Append(" next ").Append(m.Held ? "held" : m.NextTry is { } next ? Time(next) : "now");
        if (m.LastError is { } error) text.Append(CultureInfo.InvariantCulture, $" last-error \"{error}\"");
        return text.ToString();
    }

    public static string Show(MessageDetail d, DateTimeOffset now)
    {
        var m = d.Summary;
        var text = new StringBuilder();
        void Field(string name, string? value)
        {
            if (value is not null) text.Append(CultureInfo.InvariantCulture, $"{name}: {value}\n");
        }
        Field("id", m.Id);
        Field("received", $"{Time(m.ReceivedAt)} (age {Age(now - m.ReceivedAt)})");
        Field("size", $"{m.Size} bytes");
        Field("sender", $"<{m.Sender}>");
        Field("held", m.Held ? "yes (not tried until `sluice queue release`)" : "no");
        Field("delay warning sent", d.DelayWarned ? "yes" : "no");
        Field("envid", d.EnvelopeId);
        Field("ret", d.Return);
        Field("auth", d.AuthenticatedAs);
        if (d.SmtpUtf8) Field("smtputf8", "yes");
        if (d.EightBitMime) Field("body", "8BITMIME");
        foreach (var r in d.Recipients)
        {
            text.Append(CultureInfo.InvariantCulture, $"recipient <{r.Address}>: {r.Status}, {r.Attempts} {(r.Attempts == 1 ? "try" : "tries")}");
            if (r.NextTry is { } next) text.Append(CultureInfo.InvariantCulture, $", next try {Time(next)}");
            else if (r.Status == "pending") text.Append(", next try now");
            if (r.LastReply is { } reply) text.Append(CultureInfo.InvariantCulture, $", last reply \"{reply}\"");
            if (r.Notify is { } notify) text.Append(CultureInfo.InvariantCulture, $", NOTIFY={notify}");
            if (r.OriginalRecipient is { } orcpt) text.Append(CultureInfo.InvariantCulture, $", ORCPT={orcpt}");
            text.Append('\n');
        }
        text.Append(CultureInfo.InvariantCulture,
            $"tries: the spool keeps each recipient's count of tries and last reply; every try is in the delivery log (\"msg {m.Id}\", then that delivery's number)\n");
        text.Append("headers:\n");
        foreach (var line in d.Headers.Split("\r\n", StringSplitOptions.RemoveEmptyEntries)) text.Append("  ").Append(line).Append('\n');
        return text.ToString();
    }

    /// <summary>Postfix qshape's layout: T (total), then one column per age bucket in minutes, the last open.</summary>
    public static string Shape(QueueShape shape)
    {
        var header = new List<string> { "", "T" };
        header.AddRange(shape.BucketMinutes.Select(b => b.ToString(CultureInfo.InvariantCulture)));
        header.Add($"{shape.BucketMinutes[^1]}+");
        var rows = new List<List<string>> { header };
        rows.AddRange(shape.Rows.Select(r => (List<string>)[r.Domain, .. r.Counts.Select(c => c.ToString(CultureInfo.InvariantCulture))]));
        var widths = Enumerable.Range(0, header.Count).Select(c => rows.Max(r => r[c].Length)).ToArray();
        var text = new StringBuilder().Append(CultureInfo.InvariantCulture, $"# {shape.Counted}, age in minutes\n");
        foreach (var row in rows)
            text.AppendJoin(' ', row.Select((cell, c) => c == 0 ? cell.PadLeft(widths[0]) : cell.PadLeft(widths[c]))).Append('\n');
        return text.ToString();
    }

    public static string Age(TimeSpan age)
    {
        if (age < TimeSpan.Zero) age = TimeSpan.Zero;
        return age.TotalDays >= 1 ? $"{(int)age.TotalDays}d{age.Hours:00}h"
            : age.TotalHours >= 1 ? $"{(int)age.TotalHours}h{age.Minutes:00}m"
            : age.TotalMinutes >= 1 ? $"{(int)age.TotalMinutes}m{age.Seconds:00}s"
            : $"{(int)age.TotalSeconds}s";
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
