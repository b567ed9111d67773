// The client side of one SMTP transaction as recorded bytes, so benchmarks replay exactly the same
// input every time: EHLO, then (MAIL, RCPT × n, DATA with a body of a given size) × m, QUIT.
using System.Text;

namespace Sluice.Bench;

internal static class Transcript
{
    public static byte[] Build(int recipients, int bodyBytes, int messages = 1)
    {
        var message = Message(bodyBytes);
        var sb = new StringBuilder();
        sb.Append("EHLO client.bench.test\r\n");
        for (var m = 0; m < messages; m++)
        {
            sb.Append("MAIL FROM:<sender@client.bench.test> SIZE=").Append(message.Length).Append("\r\n");
            for (var i = 0; i < recipients; i++) sb.Append("RCPT TO:<user").Append(i).Append("@localhost>\r\n");
            sb.Append("DATA\r\n");
            sb.Append(message);
            sb.Append(".\r\n");
        }
        sb.Append("QUIT\r\n");
        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    /// <summary>Headers and a body of <paramref name="bodyBytes"/> in 78-octet lines, dot-stuffed where needed.</summary>
    private static string Message(int bodyBytes)
    {
        var sb = new StringBuilder();
        sb.Append("From: Sender <sender@client.bench.test>\r\n");
        sb.Append("To: user0@localhost\r\n");
        sb.Append("Subject: parse benchmark\r\n");
        sb.Append("Date: Tue, 04 Mar 2025 05:06:07 +0000\r\n");
        sb.Append("Message-ID: <bench.1@client.bench.test>\r\n");
        sb.Append("MIME-Version: 1.0\r\n");
        sb.Append("Content-Type: text/plain; charset=us-ascii\r\n");
        sb.Append("\r\n");
        const string text = "The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs. ";
        var body = new StringBuilder();
        var line = 0;
        while (body.Length < bodyBytes)
        {
            // Every 16th line starts with a dot, so un-dot-stuffing is exercised too.
            var start = line++ % 16 == 15 ? ".." : "";
            var room = Math.Max(1, Math.Min(76 - start.Length, bodyBytes - body.Length - start.Length - 2));
            body.Append(start).Append(text.AsSpan(0, Math.Min(room, text.Length))).Append("\r\n");
        }
        return sb.Append(body).ToString();
    }
}
