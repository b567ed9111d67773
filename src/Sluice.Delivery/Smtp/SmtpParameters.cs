// The ESMTP parameters a relayed transaction carries on, each only if the next hop offered the
// extension: RFC 3461 DSN (RET, ENVID, NOTIFY, ORCPT), RFC 6531 SMTPUTF8, RFC 6152 BODY=8BITMIME.
using Sluice.Core.Mail;
using Sluice.Smtp;

namespace Sluice.Delivery.Smtp;

internal static class SmtpParameters
{
    public static string ForMail(DeliveryRequest request, SmtpClientConnection next)
    {
        if (request.Envelope is not { HasExtensions: true } envelope) return ""; // the common case, on the hot path
        var words = new List<string>(4);
        if (next.Dsn)
        {
            // RFC 3461 §5.2.1: a conforming relay passes RET and ENVID on unchanged.
            if (envelope.Return != DsnReturn.Unspecified) words.Add("RET=" + DsnParameters.Return(envelope.Return));
            if (envelope.EnvelopeId is { } id) words.Add("ENVID=" + XText.Encode(id));
        }
        if (envelope.SmtpUtf8 && next.SmtpUtf8) words.Add("SMTPUTF8");
        if (envelope.EightBitMime && next.EightBitMime) words.Add("BODY=8BITMIME");
        return string.Join(' ', words);
    }

    /// <summary>RFC 3461 §5.2.1: NOTIFY and ORCPT go on to a next hop that does DSN; null when there is nothing to send.</summary>
    public static IReadOnlyList<string>? ForRecipients(DeliveryRequest request, SmtpClientConnection next)
    {
        if (!next.Dsn || request.Dsn is null) return null;
        var parameters = new string[request.Recipients.Count];
        for (int i = 0; i < parameters.Length; i++)
        {
            var dsn = request.DsnOf(i);
            var words = new List<string>(2);
            if (dsn.Notify != DsnNotify.Unspecified) words.Add("NOTIFY=" + DsnParameters.Notify(dsn.Notify));
            if (dsn.OriginalRecipient is { } orcpt) words.Add("ORCPT=" + DsnParameters.OriginalRecipient(orcpt));
            parameters[i] = string.Join(' ', words);
        }
        return parameters;
    }

    /// <summary>
    /// RFC 6531 §3.4: SMTPUTF8 is needed when the envelope asked for it and an address or the header
    /// section actually holds UTF-8; an all-ASCII message goes to a server without it unchanged.
    /// </summary>
    public static bool NeedsSmtpUtf8(DeliveryRequest request)
    {
        if (request.Envelope is not { SmtpUtf8: true }) return false;
        if (!System.Text.Ascii.IsValid(request.Sender) || request.Recipients.Any(r => !System.Text.Ascii.IsValid(r))) return true;
        var message = request.Message.Span;
        var end = message.IndexOf("\r\n\r\n"u8);
        return !System.Text.Ascii.IsValid(end < 0 ? message : message[..end]);
    }
}
