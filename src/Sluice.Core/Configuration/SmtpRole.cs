namespace Sluice.Core.Configuration;

/// <summary>What a listener is for: MX reception (port 25), submission with STARTTLS (587, RFC 6409), or implicit TLS (465, RFC 8314).</summary>
public enum SmtpRole
{
    Smtp,
    Submission,
    Submissions,
}
