// A size in bytes as an operator writes it: 52428800, "100MB", "64KiB".
namespace Sluice.Core.Configuration;

public readonly record struct ByteSize(long Bytes)
{
    public static bool TryParse(string text, out ByteSize size)
    {
        size = default;
        var s = text.Trim();
        int i = 0;
        while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
        if (i == 0 || !long.TryParse(s.AsSpan(0, i), out var n)) return false;
        long unit = s[i..].Trim().ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "K" or "KB" or "KIB" => 1L << 10,
            "M" or "MB" or "MIB" => 1L << 20,
            "G" or "GB" or "GIB" => 1L << 30,
            _ => 0,
        };
        if (unit == 0 || n > long.MaxValue / unit) return false;
        size = new ByteSize(n * unit);
        return true;
    }

    public override string ToString() => Bytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
