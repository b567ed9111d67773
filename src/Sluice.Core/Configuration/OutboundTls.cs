// Delivery.TlsPolicy's levels: how much TLS remote delivery to a domain insists on (RFC 3207 STARTTLS).
namespace Sluice.Core.Configuration;

public enum OutboundTls
{
    /// <summary>Plaintext, even when the server offers STARTTLS.</summary>
    None,
    /// <summary>STARTTLS when offered, any certificate; plaintext when not offered or the handshake fails.</summary>
    Opportunistic,
    /// <summary>STARTTLS with a certificate valid for the host's name, else the mail is deferred: never plaintext.</summary>
    Required,
}

public static class OutboundTlsNames
{
    /// <summary>"required", "opportunistic" or "none", any case; numbers are not levels.</summary>
    public static bool TryParse(string text, out OutboundTls level) =>
        Enum.TryParse(text, ignoreCase: true, out level) && Enum.IsDefined(level) && text.All(char.IsLetter);
}
