// The next hop's own reply that decided an outcome, kept apart from our words about it: a DSN
// reports it as "Remote-MTA: dns; MTA" and "Diagnostic-Code: smtp; REPLY" (RFC 3464 §2.3.5,
// §2.3.6), while an error we make ourselves has no remote MTA and a diagnostic type of our own.
namespace Sluice.Core.Mail;

/// <param name="Peer">
/// How the delivery log names the server: "NAME[ADDRESS]:PORT" for an MX host, "HOST:PORT" for a route's host.
/// </param>
/// <param name="Reply">The reply as the server sent it, code and enhanced status first; a multi-line reply's lines joined by spaces.</param>
public sealed record RemoteReply(string Peer, string Reply)
{
    private const string Said = " said: ";

    /// <summary>The remote MTA's name (RFC 3464 §2.3.5): the MX host's name we connected to, or the route's host, never the address.</summary>
    public string Mta
    {
        get
        {
            var bracket = Peer.IndexOf('[', StringComparison.Ordinal);
            if (bracket > 0) return Peer[..bracket];
            var colon = Peer.LastIndexOf(':');
            return colon > 0 ? Peer[..colon] : Peer;
        }
    }

    /// <summary>"PEER said: REPLY", the text the delivery log, the spool and `queue show` keep.</summary>
    public override string ToString() => Peer + Said + Reply;

    /// <summary>
    /// The remote reply a recorded text holds, or null for a text of our own making: the spool keeps an outcome
    /// only as the text <see cref="ToString"/> wrote, and a delay warning reports recipients' last deferrals from it.
    /// </summary>
    public static RemoteReply? FromText(string text)
    {
        // The peer has no spaces, so a text of ours ("451 4.4.1 ...", "message expired ...") never reads as one.
        var space = text.IndexOf(' ', StringComparison.Ordinal);
        if (space <= 0 || string.CompareOrdinal(text, space, Said, 0, Said.Length) != 0) return null;
        var reply = text[(space + Said.Length)..];
        return reply.Length >= 3 && char.IsAsciiDigit(reply[0]) ? new(text[..space], reply) : null;
    }
}
