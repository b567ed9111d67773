// Delivery.EightBitDkim: what becomes of an 8-bit message that carries a DKIM-Signature when the next
// hop does not offer 8BITMIME. RFC 6152 §3 wants it converted to 7 bits, which changes the signed body
// (RFC 6376 §5.3), so the operator chooses which rule gives way.
namespace Sluice.Core.Configuration;

public enum SignedEightBit
{
    /// <summary>Returned to the sender (5.6.3): neither RFC 6152 nor the signature is broken. The default.</summary>
    Bounce,
    /// <summary>Converted to 7-bit MIME all the same, as Postfix does: it arrives, and the signature no longer verifies.</summary>
    Convert,
    /// <summary>Sent 8-bit as it is, against RFC 6152 §3, as Sluice used to: the signature holds where the server takes 8-bit data anyway.</summary>
    Send,
}

public static class SignedEightBitNames
{
    /// <summary>"bounce", "convert" or "send", any case; numbers are not choices.</summary>
    public static bool TryParse(string text, out SignedEightBit choice) =>
        Enum.TryParse(text, ignoreCase: true, out choice) && Enum.IsDefined(choice) && text.All(char.IsLetter);
}
