// Maildir++ quota (https://www.courier-mta.org/imap/README.maildirquota.html): "maildirsize" in the
// Maildir holds the limit ("<bytes>S") then one "<bytes> <count>" line per change; their sum is what
// is used. Dovecot's maildir quota backend reads and writes the same file, so both agree on usage.
using System.Globalization;
using System.Text;

namespace Sluice.Core.Mailboxes;

public static class MaildirSize
{
    public const string FileName = "maildirsize";
    /// <summary>The spec's bound: a longer file is recalculated from the messages, so it never grows without end.</summary>
    private const int RecalculateAtBytes = 5120;

    /// <summary>Bytes in use as the file says, without touching it; null when there is no usable file (not known).</summary>
    public static long? ReadUsage(string maildir)
    {
        try
        {
            return Parse(File.ReadAllText(Path.Combine(maildir, FileName)), out _);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// Bytes in use. The file is rebuilt from the messages when it is missing, unreadable, past the spec's
    /// size, or states another limit than <paramref name="limitBytes"/> (the operator changed the quota).
    /// </summary>
    /// <param name="permissions">Who may read a rebuilt file: Dovecot's quota backend reads and rewrites it too.</param>
    public static long Usage(string maildir, long limitBytes, MaildirPermissions? permissions = null)
    {
        var path = Path.Combine(maildir, FileName);
        try
        {
            var text = File.ReadAllText(path);
            if (text.Length < RecalculateAtBytes && Parse(text, out var header) is { } used && StorageLimit(header) == limitBytes) return used;
        }
        catch (FileNotFoundException)
        {
        }
        var (bytes, count) = Count(maildir);
        var tmp = Path.Combine(maildir, "tmp", $"{FileName}.{Environment.ProcessId}.{Environment.CurrentManagedThreadId}");
        File.Delete(tmp); // left by a crash mid-rebuild: the name is this process's and thread's
        using (var file = new FileStream(tmp, MaildirPermissions.NewFile()))
        {
            file.Write(Encoding.ASCII.GetBytes($"{Header(limitBytes)}\n{Line(bytes, count)}"));
            (permissions ?? MaildirPermissions.Private).Apply(file.SafeFileHandle, tmp);
        }
        File.Move(tmp, path, overwrite: true);
        return bytes;
    }

    /// <summary>Records a delivered message, when the Maildir keeps a maildirsize: one appended line in one write, so concurrent writers do not interleave.</summary>
    public static void Add(string maildir, long bytes)
    {
        var path = Path.Combine(maildir, FileName);
        if (!File.Exists(path)) return;
        using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 1, FileOptions.None);
        stream.Write(Encoding.ASCII.GetBytes(Line(bytes, 1)));
    }

    private static string Header(long limitBytes) => limitBytes.ToString(CultureInfo.InvariantCulture) + "S";

    /// <summary>The "<bytes>S" of a header such as "1048576S,1000C" (Dovecot writes the message count too).</summary>
    private static long? StorageLimit(string header)
    {
        foreach (var part in header.Split(','))
            if (part.EndsWith('S') && long.TryParse(part.AsSpan(0, part.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n)) return n;
        return null;
    }

    private static string Line(long bytes, long count) => string.Create(CultureInfo.InvariantCulture, $"{bytes} {count}\n");

    /// <summary>The sum of the usage lines; null if any line is not "bytes count" (then the file is rebuilt).</summary>
    private static long? Parse(string text, out string header)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        header = lines.Length > 0 ? lines[0].Trim() : "";
        long used = 0;
        foreach (var line in lines.Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length != 2 || !long.TryParse(fields[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
                || !long.TryParse(fields[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)) return null;
            used += n;
        }
        return lines.Length > 0 ? used : null;
    }

    /// <summary>Bytes and messages in new/ and cur/ of the Maildir and its Maildir++ folders (".name"); a ",S=size" in a name spares the stat.</summary>
    private static (long Bytes, long Count) Count(string maildir)
    {
        long bytes = 0, count = 0;
        var folders = Directory.EnumerateDirectories(maildir, ".*").Prepend(maildir);
        foreach (var folder in folders)
            foreach (var sub in new[] { "new", "cur" })
            {
                var dir = new DirectoryInfo(Path.Combine(folder, sub));
                if (!dir.Exists) continue;
                foreach (var file in dir.EnumerateFiles())
                {
                    bytes += SizeInName(file.Name) ?? file.Length;
                    count++;
                }
            }
        return (bytes, count);
    }

    private static long? SizeInName(string name)
    {
        var s = name.IndexOf(",S=", StringComparison.Ordinal);
        if (s < 0) return null;
        var digits = name.AsSpan(s + 3);
        var end = digits.IndexOfAnyExceptInRange('0', '9');
        return long.TryParse(end < 0 ? digits : digits[..end], NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;
    }
}
