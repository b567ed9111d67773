// Durations as an operator writes them: "200ms", "90s", "5m", "4h", "5d", or .NET's "00:05:00".
namespace Sluice.Core.Configuration;

public static class Duration
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = default;
        var s = text.Trim();
        if (s.Length < 2) return false;
        if (s.Contains(':'))
            return TimeSpan.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out value);
        var millis = s.EndsWith("ms", StringComparison.Ordinal);
        double unitSeconds = millis ? 0.001 : s[^1] switch { 's' => 1, 'm' => 60, 'h' => 3600, 'd' => 86400, _ => 0 };
        if (unitSeconds == 0 || !double.TryParse(s.AsSpan(0, s.Length - (millis ? 2 : 1)), System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture, out var n) || double.IsNaN(n) || double.IsInfinity(n))
            return false;
        var seconds = n * unitSeconds;
        if (Math.Abs(seconds) > TimeSpan.MaxValue.TotalSeconds / 2) return false;
        value = TimeSpan.FromSeconds(seconds);
        return true;
    }
}
