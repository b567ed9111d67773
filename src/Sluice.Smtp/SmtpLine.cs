// Writing one command or reply line, CRLF-terminated (RFC 5321 §2.3.8), shared by server and client.
using System.Buffers;
using System.Text;

namespace Sluice.Smtp;

public static class SmtpLine
{
    public static void Write(IBufferWriter<byte> output, string line)
    {
        var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(line.Length) + 2);
        var n = Encoding.UTF8.GetBytes(line, span);
        span[n] = (byte)'\r';
        span[n + 1] = (byte)'\n';
        output.Advance(n + 2);
    }
}
