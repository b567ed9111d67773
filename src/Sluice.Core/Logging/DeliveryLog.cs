// The delivery log of design.md §3, qmail-send style: one line per event on stdout (and a file if
// configured). Lines are queued and written by one task so that delivery never waits on a terminal.
using System.Globalization;
using System.Text;
using System.Threading.Channels;

namespace Sluice.Core.Logging;

public sealed class DeliveryLog : IAsyncDisposable
{
    private const int MaxBurstChars = 256 * 1024;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>(new() { SingleReader = true });
    private readonly TextWriter[] _outputs;
    private readonly TimeProvider _time;
    private readonly Task _writer;

    public DeliveryLog(TextWriter stdout, string? file, TimeProvider time)
    {
        _time = time;
        var outputs = new List<TextWriter> { stdout };
        if (file is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
            outputs.Add(Buffered(new FileStream(file, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)));
        }
        _outputs = [.. outputs];
        _writer = Task.Run(WriteLinesAsync);
    }

    /// <summary>The log of `sluice serve`: standard output through a buffer that holds a whole burst.</summary>
    public static DeliveryLog ToStandardOutput(string? file, TimeProvider time) => new(Buffered(Console.OpenStandardOutput()), file, time);

    // Console.Out writes in pieces of 256 bytes and StreamWriter's default buffer is 1,024 chars: a burst
    // must fit in one buffer to leave in one write(2) (2.5 writes per relayed message before).
    private static StreamWriter Buffered(Stream s) => new(s, new UTF8Encoding(false), MaxBurstChars + 64 * 1024);

    public void Write(string line) =>
        _lines.Writer.TryWrite(_time.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z' ", CultureInfo.InvariantCulture) + line);

    private async Task WriteLinesAsync()
    {
        var reader = _lines.Reader;
        var burst = new StringBuilder();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            // The lines waiting go out together: a few writes for many lines, where stdout (autoflushed) made a
            // write(2) of each line, about seven per relayed message.
            burst.Clear();
            while (burst.Length < MaxBurstChars && reader.TryRead(out var line)) burst.Append(line).Append('\n');
            foreach (var o in _outputs)
            {
                o.Write(burst);
                o.Flush();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _lines.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        foreach (var o in _outputs.Skip(1)) await o.DisposeAsync().ConfigureAwait(false);
    }
}
