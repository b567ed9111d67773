// RFC 5321 §2.3.8: on the wire every line ends in CRLF, and CR and LF appear nowhere else. A check
// on the exact bytes a peer received, for what no peer here repairs or refuses on its own.
namespace Sluice.Testing;

public static class LineEnds
{
    /// <summary>The offsets of each CR not followed by LF and each LF not preceded by CR.</summary>
    public static IReadOnlyList<int> Bare(ReadOnlySpan<byte> bytes)
    {
        var bare = new List<int>();
        for (int i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] == '\r' && (i + 1 == bytes.Length || bytes[i + 1] != '\n')) bare.Add(i);
            else if (bytes[i] == '\n' && (i == 0 || bytes[i - 1] != '\r')) bare.Add(i);
        }
        return bare;
    }
}
