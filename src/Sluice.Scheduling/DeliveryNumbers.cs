// The N of "starting delivery N" and "delivery N: …": short and increasing as qmail-send's, but never
// handed out twice by one DataDir, so one log (which outlives restarts) has one "delivery 710". Blocks of
// numbers are reserved ahead in a file, one small durable write per Block; a clean stop writes back the
// next number, so a restart goes on from it, and after a crash numbering goes on after the block reserved.
using System.Globalization;
using Sluice.Core.IO;

namespace Sluice.Scheduling;

public sealed class DeliveryNumbers
{
    /// <summary>Numbers per reservation: one fsync per this many deliveries; a restart skips at most this many.</summary>
    public const long Block = 100_000;

    private readonly string? _file;
    private readonly Action<string> _log;
    private readonly Lock _gate = new();
    /// <summary>The next number; those below <see cref="_reserved"/> are this process's to hand out.</summary>
    private long _next, _reserved;

    private DeliveryNumbers(string? file, Action<string> log, long next)
    {
        _file = file;
        _log = log;
        _next = next;
        _reserved = file is null ? long.MaxValue : next;
    }

    /// <summary>From 1, in memory: for a scheduler with no DataDir (tests); shared by every such scheduler in the process.</summary>
    public static DeliveryNumbers InMemory { get; } = new(null, _ => { }, 1);

    /// <summary>Goes on from the numbers <paramref name="file"/> says were reserved before (from 1 without it), and reserves the first block.</summary>
    public static DeliveryNumbers Continue(string file, Action<string> log)
    {
        long next = 1;
        try
        {
            var text = File.ReadAllText(file).Trim();
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out next) || next < 1)
            {
                log($"warning: {file} does not hold a delivery number (\"{text}\"); numbering from 1 again, so numbers in the log may repeat");
                next = 1;
            }
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            // first start
        }
        var numbers = new DeliveryNumbers(file, log, next);
        lock (numbers._gate) numbers.Reserve();
        return numbers;
    }

    public long Next()
    {
        lock (_gate)
        {
            if (_next == _reserved) Reserve();
            return _next++;
        }
    }

    /// <summary>At a clean stop, once no delivery starts any more: the next start goes on from the next number, skipping none.</summary>
    public void Save()
    {
        lock (_gate)
        {
            if (_reserved != long.MaxValue) Reserve(0); // else in memory only
        }
    }

    /// <summary>Writes the end of the next block before any of it is used; a file that cannot be written leaves the numbers in memory.</summary>
    private void Reserve(long block = Block)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(_file)!);
            AtomicFile.Write(_file!, System.Text.Encoding.ASCII.GetBytes($"{_next + block}\n"), AtomicFile.OwnerOnly);
            _reserved = _next + block;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log($"warning: cannot write {_file}: {e.Message}; delivery numbers go on in memory and may repeat after a restart");
            _reserved = long.MaxValue;
        }
    }
}
