// An SMTP reply (RFC 5321 §4.2): a three-digit code and one or more text lines.
namespace Sluice.Smtp;

public sealed record SmtpReply(int Code, IReadOnlyList<string> Lines)
{
    public bool IsPositive => Code is >= 200 and < 400;
    public bool IsTransient => Code is >= 400 and < 500;

    /// <summary>
    /// "250 2.0.0 text" on one line, the form the delivery log and bounces show: a multi-line reply's lines as sent
    /// ("550-5.1.1 a 550 5.1.1 b"), joined by spaces as a DSN's Diagnostic-Code carries them (RFC 3464 §2.3.6, as Postfix does).
    /// </summary>
    public override string ToString() => Lines.Count == 0 ? $"{Code}"
        : string.Join(" ", Lines.Select((line, i) => $"{Code}{(i < Lines.Count - 1 ? '-' : ' ')}{line}".TrimEnd()));
}
