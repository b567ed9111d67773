// A real SMTP server on loopback that accepts every message and remembers it: the far end of
// relay tests (our own, so a test can await arrivals instead of sleeping). It counts simultaneous
// sessions, and can turn clients away (421 greeting, closed port) or hold replies for limit tests.
// With a certificate it offers STARTTLS (RFC 3207) and says which messages came over TLS.
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Sluice.Testing;

public sealed class SmtpSink : IAsyncDisposable
{
    /// <param name="Data">The message exactly as it came, dot-unstuffed, one char per byte (Latin-1): a bare LF stays one.</param>
    public sealed record Received(string Sender, IReadOnlyList<string> Recipients, string Data)
    {
        /// <summary>What followed the reverse-path on MAIL, e.g. "RET=HDRS ENVID=x" ("" for nothing).</summary>
        public string MailParameters { get; init; } = "";
        /// <summary>What followed each forward-path on RCPT, in the order of <see cref="Recipients"/>.</summary>
        public IReadOnlyList<string> RecipientParameters { get; init; } = [];
        /// <summary>The message came after a STARTTLS handshake.</summary>
        public bool Tls { get; init; }
    }

    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly List<(int Count, TaskCompletionSource Done)> _waiters = [];
    private readonly SessionGauge? _alsoCountIn;
    private TcpListener _listener;
    /// <summary>While not listening: a bound socket that keeps the port from being handed out as some connection's own.</summary>
    private Socket? _placeholder;
    private Task _accepting;

    /// <param name="alsoCountIn">A gauge shared by several sinks, to see the sessions at all of them at once.</param>
    public SmtpSink(SessionGauge? alsoCountIn = null) : this(IPAddress.Loopback, 0, alsoCountIn)
    {
    }

    /// <summary>A sink on <paramref name="address"/>:<paramref name="port"/> (0: any free port), e.g. one MX host of several sharing a port.</summary>
    public SmtpSink(IPAddress address, int port, SessionGauge? alsoCountIn = null)
    {
        _alsoCountIn = alsoCountIn;
        Address = address;
        _listener = new TcpListener(address, port);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync(_listener);
    }

    public IPAddress Address { get; }
    public int Port { get; }
    /// <summary>When set, STARTTLS is offered and this certificate is presented.</summary>
    public X509Certificate2? Certificate { get; set; }
    /// <summary>Sessions open now, the most at once, and how many there have been.</summary>
    public SessionGauge Sessions { get; } = new();
    /// <summary>The first line of each session; anything but a 220 is said and the connection closed (e.g. "421 4.3.2 busy").</summary>
    public string Greeting { get; set; } = "220 sink.test ESMTP";
    /// <summary>Accept connections and never say a word, like a hung MX host: the client's timeouts must end the session.</summary>
    public bool Silent { get; set; }
    /// <summary>Awaited after the data of a message and before its reply, to hold transactions open.</summary>
    public Func<Received, Task>? BeforeDataReply { get; set; }
    public ConcurrentQueue<Received> Messages { get; } = new();
    /// <summary>A reply to give instead of 250 for the data of a message, for failure tests.</summary>
    public Func<Received, string>? DataReply { get; set; }
    /// <summary>A reply to give instead of 250 to RCPT for this address (null: accept it), to refuse one recipient.</summary>
    public Func<string, string?>? RcptReply { get; set; }
    /// <summary>The EHLO keywords offered, e.g. add "DSN", "SMTPUTF8" or "8BITMIME".</summary>
    public IReadOnlyList<string> Extensions { get; set; } = ["PIPELINING"];

    public async Task WaitForCountAsync(int count, TimeSpan timeout)
    {
        TaskCompletionSource done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (Messages.Count >= count) return;
            _waiters.Add((count, done));
        }
        try
        {
            await done.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"sink holds {Messages.Count} messages, expected {count} within {timeout}");
        }
    }

    /// <summary>Closes the port: connections are refused until <see cref="StartListening"/>; sessions open stay.</summary>
    public void StopListening()
    {
        lock (_lock)
        {
            _listener.Stop();
            // Bound but not listening: connections are refused, and no connect() takes the port as its ephemeral one.
            _placeholder = new Socket(Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            _placeholder.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            _placeholder.Bind(new IPEndPoint(Address, Port));
        }
    }

    /// <summary>Listens on the same port again.</summary>
    public void StartListening()
    {
        lock (_lock)
        {
            _listener = new TcpListener(Address, Port);
            // SO_REUSEADDR on both: a listener may bind beside the placeholder, which goes once it listens.
            _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            _listener.Start();
            _placeholder?.Dispose();
            _placeholder = null;
            _accepting = AcceptAsync(_listener);
        }
    }

    private async Task AcceptAsync(TcpListener listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        Sessions.Enter();
        _alsoCountIn?.Enter();
        try
        {
            client.NoDelay = true; // one reply per write: Nagle would hold each behind the client's delayed ACK
            await ConverseAsync(client);
        }
        finally
        {
            client.Dispose();
            Sessions.Leave();
            _alsoCountIn?.Leave();
        }
    }

    private async Task ConverseAsync(TcpClient client)
    {
        try
        {
            Stream stream = client.GetStream();
            var reader = new RawLineReader(stream);
            var writer = new StreamWriter(stream, Encoding.Latin1) { NewLine = "\r\n", AutoFlush = false };
            async Task Say(string line) { await writer.WriteLineAsync(line); await writer.FlushAsync(); }
            if (Silent)
            {
                // Read (and ignore) until the client gives up and closes.
                while (await stream.ReadAsync(new byte[512], _stop.Token) > 0) { }
                return;
            }
            var tls = false;
            var greeting = Greeting;
            await Say(greeting);
            if (!greeting.StartsWith("220", StringComparison.Ordinal)) return;
            string sender = "", mailParameters = "";
            var rcpts = new List<string>();
            var rcptParameters = new List<string>();
            while (await reader.ReadLineAsync(_stop.Token) is { } raw)
            {
                var line = Encoding.Latin1.GetString(raw).TrimEnd('\r', '\n');
                var verb = line.Length >= 4 ? line[..4].ToUpperInvariant() : line.ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO":
                        IReadOnlyList<string> offered = [.. Extensions, .. Certificate is not null && !tls ? ["STARTTLS"] : Array.Empty<string>()];
                        if (offered.Count == 0) offered = ["HELP"];
                        await writer.WriteLineAsync("250-sink.test");
                        for (int i = 0; i < offered.Count; i++) await writer.WriteLineAsync((i < offered.Count - 1 ? "250-" : "250 ") + offered[i]);
                        await writer.FlushAsync();
                        break;
                    case "STAR" when Certificate is { } certificate && !tls:
                        await Say("220 2.0.0 go ahead");
                        var ssl = new SslStream(stream);
                        await ssl.AuthenticateAsServerAsync(certificate);
                        // RFC 3207 §4.2: what was said before the handshake is forgotten, the client starts again with EHLO.
                        (stream, tls) = (ssl, true);
                        reader = new RawLineReader(stream);
                        writer = new StreamWriter(stream, Encoding.Latin1) { NewLine = "\r\n", AutoFlush = false };
                        break;
                    case "MAIL": sender = Between(line); mailParameters = After(line); rcpts.Clear(); rcptParameters.Clear(); await Say("250 2.1.0 ok"); break;
                    case "RCPT" when RcptReply?.Invoke(Between(line)) is { } refusal: await Say(refusal); break;
                    case "RCPT": rcpts.Add(Between(line)); rcptParameters.Add(After(line)); await Say("250 2.1.5 ok"); break;
                    case "DATA":
                        await writer.WriteLineAsync("354 go"); await writer.FlushAsync();
                        var data = new StringBuilder();
                        byte[]? d;
                        // Only CRLF.CRLF ends the data (RFC 5321 §4.1.1.4); each line is kept with the line end it came with.
                        while ((d = await reader.ReadLineAsync(_stop.Token)) is not null && !d.AsSpan().SequenceEqual(".\r\n"u8))
                            data.Append(Encoding.Latin1.GetString(d.AsSpan(d.Length > 0 && d[0] == '.' ? 1 : 0)));
                        if (d is null) return; // cut off before the end of data: not a message
                        var received = new Received(sender, [.. rcpts], data.ToString()) { MailParameters = mailParameters, RecipientParameters = [.. rcptParameters], Tls = tls };
                        if (BeforeDataReply is { } hold) await hold(received);
                        var reply = DataReply?.Invoke(received) ?? "250 2.0.0 queued";
                        if (reply.StartsWith('2')) Add(received);
                        await Say(reply);
                        break;
                    case "QUIT": await writer.WriteLineAsync("221 bye"); await writer.FlushAsync(); return;
                    default: await Say("250 ok"); break;
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or System.Security.Authentication.AuthenticationException) { }
    }

    /// <summary>Lines as bytes up to and including their LF (a bare one too), unlike StreamReader, which turns every line end into its own.</summary>
    private sealed class RawLineReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[16 * 1024];
        private int _start, _end;

        /// <summary>The next line, or null at the end of the stream (a last line without LF is dropped: the client was cut off).</summary>
        public async Task<byte[]?> ReadLineAsync(CancellationToken ct)
        {
            var line = new MemoryStream();
            while (true)
            {
                var lf = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
                if (lf >= 0)
                {
                    line.Write(_buffer, _start, lf + 1);
                    _start += lf + 1;
                    return line.ToArray();
                }
                line.Write(_buffer, _start, _end - _start);
                (_start, _end) = (0, await stream.ReadAsync(_buffer, ct));
                if (_end == 0) return null;
            }
        }
    }

    private void Add(Received message)
    {
        lock (_lock)
        {
            Messages.Enqueue(message);
            foreach (var w in _waiters.Where(w => Messages.Count >= w.Count).ToList())
            {
                w.Done.TrySetResult();
                _waiters.Remove(w);
            }
        }
    }

    private static string Between(string line)
    {
        var open = line.IndexOf('<', StringComparison.Ordinal);
        var close = line.IndexOf('>', StringComparison.Ordinal);
        return open >= 0 && close > open ? line[(open + 1)..close] : "";
    }

    private static string After(string line)
    {
        var close = line.IndexOf('>', StringComparison.Ordinal);
        return close < 0 ? "" : line[(close + 1)..].Trim();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        Task accepting;
        lock (_lock)
        {
            _listener.Stop();
            _placeholder?.Dispose();
            accepting = _accepting;
        }
        try { await accepting; } catch (OperationCanceledException) { }
    }
}
