// The byte pipes a session reads and writes, and the one change they can undergo: STARTTLS
// (RFC 3207), which swaps them for pipes over TLS on the same connection.
using System.IO.Pipelines;
using System.Net.Security;

namespace Sluice.Receive;

public sealed class SmtpTransport : IAsyncDisposable
{
    private readonly Stream? _connection;

    /// <summary>Pipes with nothing underneath that could carry TLS (tests, fuzzing).</summary>
    public SmtpTransport(IDuplexPipe pipe)
    {
        Input = pipe.Input;
        Output = pipe.Output;
    }

    /// <summary>A connection's stream; STARTTLS can be layered on it.</summary>
    public SmtpTransport(Stream connection)
    {
        _connection = connection;
        (Input, Output) = PipesOver(connection);
    }

    public PipeReader Input { get; private set; }
    public PipeWriter Output { get; private set; }
    public SslStream? Tls { get; private set; }
    public bool CanStartTls => _connection is not null && Tls is null;

    /// <summary>
    /// Completes the plaintext pipes, which drops whatever the client sent after STARTTLS
    /// (CVE-2011-0411: it must not be taken as if it came over TLS), then handshakes as server.
    /// </summary>
    public async Task StartTlsAsync(SslStreamCertificateContext certificate, CancellationToken ct)
    {
        if (_connection is null || Tls is not null) throw new InvalidOperationException("TLS cannot be started on this transport");
        await Input.CompleteAsync().ConfigureAwait(false);
        await Output.CompleteAsync().ConfigureAwait(false);
        var tls = new SslStream(_connection, leaveInnerStreamOpen: true);
        Tls = tls;
        await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificateContext = certificate }, ct).ConfigureAwait(false);
        (Input, Output) = PipesOver(tls);
    }

    /// <summary>"TLSv1.3 with cipher TLS_AES_256_GCM_SHA384", as trace headers and logs spell it.</summary>
    public string? TlsDescription => Tls is { IsAuthenticated: true } t
        ? $"{ProtocolName(t.SslProtocol)} with cipher {t.NegotiatedCipherSuite}"
        : null;

    private static string ProtocolName(System.Security.Authentication.SslProtocols p) => p switch
    {
        System.Security.Authentication.SslProtocols.Tls13 => "TLSv1.3",
        System.Security.Authentication.SslProtocols.Tls12 => "TLSv1.2",
        _ => p.ToString(),
    };

    private static (PipeReader, PipeWriter) PipesOver(Stream s) =>
        // Zero-byte reads: an idle session waits without holding a read buffer (4 KiB each, thousands of sessions).
        (PipeReader.Create(s, new StreamPipeReaderOptions(leaveOpen: true, useZeroByteReads: true)),
         PipeWriter.Create(s, new StreamPipeWriterOptions(leaveOpen: true)));

    public async ValueTask DisposeAsync()
    {
        await Input.CompleteAsync().ConfigureAwait(false);
        await Output.CompleteAsync().ConfigureAwait(false);
        if (Tls is not null) await Tls.DisposeAsync().ConfigureAwait(false);
        if (_connection is not null) await _connection.DisposeAsync().ConfigureAwait(false);
    }
}
