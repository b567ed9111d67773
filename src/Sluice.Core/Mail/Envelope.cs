// The SMTP envelope as it was accepted: what the queue keeps beside the body and hands to
// delivery and bounces. The DSN fields are RFC 3461's, kept so bounces can honour them.
namespace Sluice.Core.Mail;

/// <summary>RFC 3461 §4.3 RET: how much of the message a failure DSN carries.</summary>
public enum DsnReturn : byte
{
    Unspecified = 0,
    Headers = 1,
    Full = 2,
}

/// <summary>RFC 3461 §4.1 NOTIFY; <see cref="Unspecified"/> means the default, FAILURE (and DELAY at the MTA's choice).</summary>
[Flags]
public enum DsnNotify : byte
{
    Unspecified = 0,
    Never = 1,
    Success = 2,
    Failure = 4,
    Delay = 8,
}

/// <summary>Per-recipient DSN request: NOTIFY and ORCPT (RFC 3461 §4.2, kept as "type;xtext-decoded address").</summary>
public readonly record struct RecipientDsn(DsnNotify Notify, string? OriginalRecipient)
{
    public bool Wants(DsnNotify what) => Notify == DsnNotify.Unspecified ? what != DsnNotify.Success : (Notify & what) != 0;
}

public sealed class Envelope
{
    public Envelope(string sender, IReadOnlyList<string> recipients)
    {
        Sender = sender;
        Recipients = recipients;
    }

    /// <summary>Reverse-path; "" is the null sender of a bounce.</summary>
    public string Sender { get; }
    public IReadOnlyList<string> Recipients { get; }
    /// <summary>Same order as <see cref="Recipients"/>; null when no recipient asked for anything (the common case).</summary>
    public IReadOnlyList<RecipientDsn>? Dsn { get; init; }
    public DsnReturn Return { get; init; }
    /// <summary>RFC 3461 §4.4 ENVID, xtext-decoded.</summary>
    public string? EnvelopeId { get; init; }
    /// <summary>RFC 6531: the client sent SMTPUTF8, so addresses or headers may be UTF-8.</summary>
    public bool SmtpUtf8 { get; init; }
    /// <summary>RFC 6152 BODY=8BITMIME was declared.</summary>
    public bool EightBitMime { get; init; }
    /// <summary>
    /// A double bounce: this MTA's report, to the postmaster, that a null-sender message failed. If it fails
    /// too, it is discarded ("triple bounce"), never reported again.
    /// </summary>
    public bool DoubleBounce { get; init; }
    /// <summary>The RFC 4954 identity of the submitting session, if any.</summary>
    public string? AuthenticatedAs { get; init; }

    public RecipientDsn DsnOf(int recipient) => Dsn is { } d ? d[recipient] : default;

    /// <summary>This envelope for another sender and recipients (an alias's share of a message), every other field kept.</summary>
    public Envelope Readdressed(string sender, IReadOnlyList<string> recipients, IReadOnlyList<RecipientDsn>? dsn) => new(sender, recipients)
    {
        Dsn = dsn,
        Return = Return,
        EnvelopeId = EnvelopeId,
        SmtpUtf8 = SmtpUtf8,
        EightBitMime = EightBitMime,
        DoubleBounce = DoubleBounce,
        AuthenticatedAs = AuthenticatedAs,
    };

    /// <summary>True when anything beyond sender and recipients is set, so the spool need not store it otherwise.</summary>
    public bool HasExtensions =>
        Dsn is not null || Return != DsnReturn.Unspecified || EnvelopeId is not null || SmtpUtf8 || EightBitMime || DoubleBounce || AuthenticatedAs is not null;
}
