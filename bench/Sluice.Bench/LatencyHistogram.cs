// Latencies in microseconds for bench/compare's latency workload: log-linear buckets in the manner
// of HdrHistogram (exact below 256 µs, then 128 buckets per power of two, so under 0.8 % error),
// a few kilobytes whatever the count, where a sorted list of every sample would grow without bound.
using System.Numerics;

namespace Sluice.Bench;

internal sealed class LatencyHistogram
{
    private const int SubBits = 8;
    private const int Half = 1 << (SubBits - 1);
    private readonly long[] _counts = new long[(64 - SubBits + 2) * Half];

    public long Count { get; private set; }
    public long MaxMicroseconds { get; private set; }

    public void Record(long microseconds)
    {
        var v = Math.Max(0, microseconds);
        _counts[Index(v)]++;
        Count++;
        MaxMicroseconds = Math.Max(MaxMicroseconds, v);
    }

    public void Add(LatencyHistogram other)
    {
        for (int i = 0; i < _counts.Length; i++) _counts[i] += other._counts[i];
        Count += other.Count;
        MaxMicroseconds = Math.Max(MaxMicroseconds, other.MaxMicroseconds);
    }

    /// <summary>The smallest value at or above which lie no more than (1 − q) of the samples: the bucket's top, capped by the maximum.</summary>
    public long Quantile(double q)
    {
        if (Count == 0) return 0;
        var rank = Math.Max(1, (long)Math.Ceiling(q * Count));
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
            if ((seen += _counts[i]) >= rank) return Math.Min(Highest(i), MaxMicroseconds);
        return MaxMicroseconds;
    }

    private static int Index(long v)
    {
        if (v < 2 * Half) return (int)v;
        var shift = 63 - BitOperations.LeadingZeroCount((ulong)v) - SubBits + 1;
        return shift * Half + (int)(v >> shift);
    }

    private static long Highest(int index)
    {
        if (index < 2 * Half) return index;
        var shift = index / Half - 1;
        var mantissa = index - shift * Half;
        return ((long)(mantissa + 1) << shift) - 1;
    }
}
