// The RFC 3461 §4 parameter values (NOTIFY, RET, ORCPT, ENVID) written out from the Envelope's
// decoded fields: for MAIL and RCPT when relaying, and for the delivery log.
namespace Sluice.Core.Mail;

public static class DsnParameters
{
    /// <summary>RFC 3461 §4.1: "NEVER", or SUCCESS, FAILURE and DELAY joined by commas; "" when unspecified.</summary>
    public static string Notify(DsnNotify notify)
    {
        if ((notify & DsnNotify.Never) != 0) return "NEVER";
        var words = new List<string>(3);
        if ((notify & DsnNotify.Success) != 0) words.Add("SUCCESS");
        if ((notify & DsnNotify.Failure) != 0) words.Add("FAILURE");
        if ((notify & DsnNotify.Delay) != 0) words.Add("DELAY");
        return string.Join(',', words);
    }

    /// <summary>RFC 3461 §4.3: "FULL" or "HDRS"; "" when unspecified.</summary>
    public static string Return(DsnReturn ret) => ret switch
    {
        DsnReturn.Full => "FULL",
        DsnReturn.Headers => "HDRS",
        _ => "",
    };

    /// <summary>RFC 3461 §4.2: "addr-type;xtext" from the decoded "addr-type;address" the Envelope keeps.</summary>
    public static string OriginalRecipient(string orcpt)
    {
        var semi = orcpt.IndexOf(';', StringComparison.Ordinal);
        return semi < 0 ? "rfc822;" + XText.Encode(orcpt) : orcpt[..(semi + 1)] + XText.Encode(orcpt[(semi + 1)..]);
    }
}
