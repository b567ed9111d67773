// Values for the message/delivery-status fields that echo what the client sent (RFC 3464 §2.2.1,
// §2.3.1, §2.3.2): kept readable where they are printable ASCII, encoded otherwise, so a decoded
// ENVID or ORCPT can never carry a line break (a header injection) or raw UTF-8 into the report.
using Sluice.Core.Mail;

namespace Sluice.Scheduling.Bounces;

internal static class DsnFields
{
    /// <summary>RFC 3464 §2.2.1: the ENVID as given; xtext (RFC 3461 §4) if it is not printable ASCII.</summary>
    public static string EnvelopeId(string envid) => Printable(envid) ? envid : XText.Encode(envid);

    /// <summary>RFC 3464 §2.3.1, from the "type;address" the Envelope keeps.</summary>
    /// <param name="international">For a message/global-delivery-status (RFC 6533 §6): UTF-8 stays UTF-8.</param>
    public static string OriginalRecipient(string orcpt, bool international = false)
    {
        var semi = orcpt.IndexOf(';', StringComparison.Ordinal);
        var (type, address) = semi < 0 ? ("rfc822", orcpt) : (orcpt[..semi], orcpt[(semi + 1)..]);
        return Typed(type, address, "", international);
    }

    /// <summary>RFC 3464 §2.3.2: "rfc822; address", or RFC 6533 §3 "utf-8; ..." for an internationalised one.</summary>
    /// <param name="international">For a message/global-delivery-status (RFC 6533 §6): UTF-8 stays UTF-8.</param>
    public static string FinalRecipient(string address, bool international = false) => Typed("rfc822", address, " ", international);

    private static string Typed(string type, string address, string space, bool international)
    {
        if (Printable(address)) return $"{type};{space}{address}";
        var mailbox = type.Equals("rfc822", StringComparison.OrdinalIgnoreCase) || type.Equals("utf-8", StringComparison.OrdinalIgnoreCase);
        return mailbox ? $"utf-8;{space}{XText.EncodeUtf8Address(address, unicode: international)}" : $"{type};{space}{XText.Encode(address)}";
    }

    private static bool Printable(string value) => value.All(c => c is >= ' ' and <= '~');
}
