// How long the client waits at each step of a session. The defaults are RFC 5321 §4.5.3.2's minimums;
// the connect timeout is short, as Postfix's TUNING_README advises: a dead MX host otherwise holds a
// delivery slot (and the destination's concurrency) for minutes before the next host is tried.
namespace Sluice.Smtp;

public sealed record SmtpTimeouts
{
    public TimeSpan Connect { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>§4.5.3.2.1: the 220 greeting.</summary>
    public TimeSpan Greeting { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>EHLO, HELO, STARTTLS (and its handshake), RSET, QUIT: §4.5.3.2 names none; Postfix waits 300 s.</summary>
    public TimeSpan Command { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>§4.5.3.2.2: the reply to MAIL.</summary>
    public TimeSpan Mail { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>§4.5.3.2.3: the reply to each RCPT.</summary>
    public TimeSpan Rcpt { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>§4.5.3.2.4: the 354 to DATA.</summary>
    public TimeSpan DataInit { get; init; } = TimeSpan.FromMinutes(2);
    /// <summary>§4.5.3.2.5: each block of message data sent.</summary>
    public TimeSpan DataBlock { get; init; } = TimeSpan.FromMinutes(3);
    /// <summary>§4.5.3.2.6: the reply to the final dot, while the server takes the message over.</summary>
    public TimeSpan DataTerm { get; init; } = TimeSpan.FromMinutes(10);

}
