// Mailbox address helpers for envelope addresses already stripped of their angle brackets.
namespace Sluice.Core.Mail;

public static class Address
{
    /// <summary>The domain part, lower-cased ("" for the null sender or a bare local part).</summary>
    public static string DomainOf(string address)
    {
        var at = address.LastIndexOf('@');
        return at < 0 ? "" : address[(at + 1)..].ToLowerInvariant();
    }

    public static string LocalPartOf(string address)
    {
        var at = address.LastIndexOf('@');
        return at < 0 ? address : address[..at];
    }
}
