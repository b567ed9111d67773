// sendmail -bs: the SMTP session on stdin/stdout is relayed byte for byte to the running server's smtp
// listener, so it meets the same checks as any SMTP client. Lines from stdin that end in a bare LF get CRLF
// (RFC 5321 §2.3.8 wants CRLF; scripts piping to -bs often write LF, and sendmail accepts them); the
// server's replies pass unchanged, CRLF as it sends them.
using System.Net.Sockets;
using Sluice.Core.Configuration;
using Sluice.Operate;

namespace Sluice.Verbs;

internal static class SmtpRelay
{
    public static async Task<int> RunAsync(SluiceOptions options, CancellationToken ct)
    {
        if (InjectVerb.SmtpListener(options) is not { } ep)
            return InjectVerb.Fail(ExitCodes.Config, "Smtp.Listen names no smtp-role address to relay -bs to");
        var host = LoopbackInjection.HostOf(ep);
        using var client = new TcpClient(ep.AddressFamily);
        try
        {
            await client.ConnectAsync(host, ep.Port, ct).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            return InjectVerb.Fail(ExitCodes.TempFail, $"connect to {host}:{ep.Port} failed: {e.Message} (is `sluice serve` running with this configuration?)");
        }
        var server = client.GetStream();
        using var stdin = Console.OpenStandardInput();
        using var stdout = Console.OpenStandardOutput();
        // Not awaited: the session is over when the server closes (after QUIT, or on a timeout), and stdin may stay open.
        _ = PumpToServerAsync(stdin, client.Client, server, ct);
        try
        {
            await server.CopyToAsync(stdout, ct).ConfigureAwait(false);
            return ExitCodes.Ok;
        }
        catch (IOException e)
        {
            return InjectVerb.Fail(ExitCodes.TempFail, $"the SMTP session with {host}:{ep.Port} broke off: {e.Message}");
        }
    }

    private static async Task PumpToServerAsync(Stream stdin, Socket socket, NetworkStream server, CancellationToken ct)
    {
        var buffer = new byte[16 * 1024];
        var output = new MemoryStream();
        byte previous = 0;
        try
        {
            while (await stdin.ReadAsync(buffer, ct).ConfigureAwait(false) is var n and > 0)
            {
                output.SetLength(0);
                foreach (var b in buffer.AsSpan(0, n))
                {
                    if (b == '\n' && previous != '\r') output.WriteByte((byte)'\r');
                    output.WriteByte(b);
                    previous = b;
                }
                await server.WriteAsync(output.GetBuffer().AsMemory(0, (int)output.Length), ct).ConfigureAwait(false);
            }
            socket.Shutdown(SocketShutdown.Send); // end of stdin: the server sees the client leave
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The server closed first; the copy to stdout has ended or ends now.
        }
    }
}
