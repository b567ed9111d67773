// An SMTP reply (RFC 5321 §4.2): a three-digit code and one or more text lines.
namespace Sluice.Smtp;

public sealed record SmtpReply(int Code, IReadOnlyList<string> Lines)
{
    public bool IsPositive => Code is >= 200 and < 400;
    public bool IsTransient => Code is >= 400 and < 500;

    /// <summary>"250 2.0.0 text" on one line, the form the delivery log and bounces show.</summary>
    public override string ToString() => $"{Code} {string.Join(" / ", Lines)}".TrimEnd();
}
