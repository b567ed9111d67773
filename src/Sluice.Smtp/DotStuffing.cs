// RFC 5321 §4.5.2 transparency: a line that starts with "." gets one more on the wire.
// Hand-written because it runs over every relayed byte; IndexOf is vectorised.
using System.Buffers;

namespace Sluice.Smtp;

public static class DotStuffing
{
    private static readonly byte[] Terminator = "\r\n.\r\n"u8.ToArray();

    /// <summary>Appends <paramref name="message"/> (CRLF lines) dot-stuffed, then the end-of-data line.</summary>
    public static void WriteStuffed(ReadOnlySpan<byte> message, IBufferWriter<byte> output)
    {
        bool atLineStart = true;
        while (message.Length > 0)
        {
            if (atLineStart && message[0] == (byte)'.') output.Write("."u8);
            var lf = message.IndexOf((byte)'\n');
            var line = lf < 0 ? message : message[..(lf + 1)];
            output.Write(line);
            message = message[line.Length..];
            atLineStart = lf >= 0;
        }
        output.Write(atLineStart ? Terminator.AsSpan(2) : Terminator);
    }
}
