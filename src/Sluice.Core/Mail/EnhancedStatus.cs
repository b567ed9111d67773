// RFC 3463 enhanced status codes as they appear inside reply text ("550 5.1.1 no such user").
namespace Sluice.Core.Mail;

public static class EnhancedStatus
{
    /// <summary>The first class.subject.detail code in <paramref name="text"/>, or null.</summary>
    public static string? Find(string text)
    {
        foreach (var token in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = token.Split('.');
            if (parts.Length == 3 && parts[0] is "2" or "4" or "5"
                && parts[1].Length is >= 1 and <= 3 && parts[1].All(char.IsAsciiDigit)
                && parts[2].Length is >= 1 and <= 3 && parts[2].All(char.IsAsciiDigit))
                return token;
        }
        return null;
    }
}
