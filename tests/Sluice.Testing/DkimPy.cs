// dkimpy (Debian's python3-dkim, which ./test.sh installs) as an independent DKIM verifier: it is
// given the exact bytes a peer received, and asks a real DNS server on loopback for the key. dkimpy
// itself accepts LF for CRLF, so tests check line endings apart (LineEnds).
using System.Diagnostics;

namespace Sluice.Testing;

public static class DkimPy
{
    /// <summary>Debian's interpreter, where python3-dkim is installed (a python3 earlier on PATH may lack it).</summary>
    private const string Python = "/usr/bin/python3";

    private const string Script = """
        import sys, logging, dkim, dns.resolver
        host, port = sys.argv[1], int(sys.argv[2])
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = [host], port
        def txt(name, timeout=5):
            name = name.decode() if isinstance(name, bytes) else name
            answer = resolver.resolve(name, "TXT", lifetime=timeout)
            return b"".join(b"".join(r.strings) for r in answer)
        logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)
        ok = dkim.verify(sys.stdin.buffer.read(), logger=logging.getLogger("dkim"), dnsfunc=txt)
        print("pass" if ok else "fail")
        """;

    /// <summary>Whether the first DKIM-Signature of <paramref name="message"/> verifies; and dkimpy's log, to show when it does not.</summary>
    public static async Task<(bool Verified, string Log)> VerifyAsync(byte[] message, UnboundServer dns)
    {
        if (!File.Exists(Python)) throw new InvalidOperationException($"{Python} is not installed: ./test.sh installs python3-dkim");
        var start = new ProcessStartInfo(Python, ["-c", Script, "127.0.0.1", dns.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var log = process.StandardError.ReadToEndAsync();
        await process.StandardInput.BaseStream.WriteAsync(message);
        process.StandardInput.Close();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var verdict = (await output).Trim();
        return (process.ExitCode == 0 && verdict == "pass", $"exit {process.ExitCode}, {verdict}\n{await log}");
    }
}
