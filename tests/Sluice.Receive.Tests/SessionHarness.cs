// Runs one SmtpSession over two in-memory pipes (client→server, server→client) with a real file
// spool behind it, so a test speaks SMTP bytes and reads back both the replies and what was stored.
using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Reflection;
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Queue;
using Sluice.Queue.Spool;
using Sluice.Testing;

namespace Sluice.Receive.Tests;

internal sealed class SessionHarness : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    public static readonly DateTimeOffset Now = new(2025, 3, 4, 5, 6, 7, TimeSpan.Zero);
    public const long SessionId = 7;

    // No back-pressure in either direction: a test may write a large body before reading replies.
    private static readonly PipeOptions Unbounded = new(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false);

    private readonly Pipe _toServer = new(Unbounded);
    // Instead of _toServer when the test decides how the input is fragmented (see WriteByWriteReader).
    private readonly WriteByWriteReader? _writes;
    private readonly Pipe _toClient = new(Unbounded);
    private readonly TempDirectory _dir = new();
    private readonly MailQueue _queue;
    private readonly List<QueuedMessage> _stored = [];
    private bool _disposed;

    private SessionHarness(SluiceOptions options, IPEndPoint? remote, bool writeByWrite)
    {
        Store = FileQueueStore.Open(1, _dir.File("queue1"), 64L << 20, TimeProvider.System, _ => { });
        _queue = new MailQueue(Store);
        Session = new SmtpSession(new ReceivePolicy(options), new Balancer([_queue]), new FixedTime(Now), remote, SessionId);
        if (writeByWrite) _writes = new WriteByWriteReader();
        Run = Session.RunAsync(new DuplexPipe(_writes ?? _toServer.Reader, _toClient.Writer), CancellationToken.None);
    }

    public FileQueueStore Store { get; }

    /// <summary>The spool's directory, to read it back as a restart would (FileQueueStore.ReadOnly).</summary>
    public string SpoolDirectory => _dir.File("queue1");

    public SmtpSession Session { get; }

    /// <summary>The session's RunAsync.</summary>
    public Task Run { get; }

    /// <summary>
    /// Starts a session; <paramref name="configure"/> adjusts the default options first. With
    /// <paramref name="writeByWrite"/> each SendAsync reaches the session as one read of its own.
    /// </summary>
    public static SessionHarness Start(Action<SluiceOptions>? configure = null, IPAddress? remote = null, bool writeByWrite = false)
    {
        var options = new SluiceOptions();
        configure?.Invoke(options);
        return new SessionHarness(options, new IPEndPoint(remote ?? IPAddress.Loopback, 40000), writeByWrite);
    }

    /// <summary>Starts a session and consumes the 220 greeting.</summary>
    public static async Task<SessionHarness> StartGreetedAsync(Action<SluiceOptions>? configure = null, IPAddress? remote = null, bool writeByWrite = false)
    {
        var h = Start(configure, remote, writeByWrite);
        Assert.StartsWith("220 ", await h.ReadLineAsync());
        return h;
    }

    /// <summary>Greeted and EHLO'd as client.test; the EHLO reply is consumed.</summary>
    public static async Task<SessionHarness> StartEhloAsync(Action<SluiceOptions>? configure = null, IPAddress? remote = null, bool writeByWrite = false)
    {
        var h = await StartGreetedAsync(configure, remote, writeByWrite);
        var ehlo = await h.CommandAsync("EHLO client.test");
        Assert.Equal("250 ENHANCEDSTATUSCODES", ehlo[^1]);
        return h;
    }

    public async Task SendAsync(string text) => await SendAsync(Encoding.UTF8.GetBytes(text));

    public async Task SendAsync(byte[] bytes)
    {
        if (_writes is not null)
        {
            Assert.True(_writes.Write(bytes), "the session stopped reading before this write");
            return;
        }
        using var cts = new CancellationTokenSource(Timeout);
        var result = await _toServer.Writer.WriteAsync(bytes, cts.Token);
        Assert.False(result.IsCanceled);
    }

    /// <summary>Sends one command line (CRLF added) and returns its whole reply, one string per line.</summary>
    public async Task<IReadOnlyList<string>> CommandAsync(string line)
    {
        await SendAsync(line + "\r\n");
        return await ReadReplyAsync();
    }

    /// <summary>Sends one command line and returns its single-line reply.</summary>
    public async Task<string> CommandLineAsync(string line)
    {
        var reply = await CommandAsync(line);
        return Assert.Single(reply);
    }

    /// <summary>Reads reply lines up to and including the final one ("ddd " rather than "ddd-").</summary>
    public async Task<IReadOnlyList<string>> ReadReplyAsync()
    {
        var lines = new List<string>();
        while (true)
        {
            var line = await ReadLineAsync();
            lines.Add(line);
            Assert.True(line.Length >= 3 && line[..3].All(char.IsAsciiDigit), $"not a reply line: \"{line}\"");
            if (line.Length == 3 || line[3] == ' ') return lines;
            Assert.Equal('-', line[3]);
        }
    }

    /// <summary>One reply line without its CRLF; fails if the line does not end in CRLF or the server closes.</summary>
    public async Task<string> ReadLineAsync()
    {
        var line = await TryReadLineAsync();
        Assert.True(line is not null, "the server closed the connection while a reply was expected");
        return line;
    }

    /// <summary>Asserts that the server has closed its output with nothing more to read, and that RunAsync completed.</summary>
    public async Task AssertClosedAsync()
    {
        var extra = await TryReadLineAsync();
        Assert.True(extra is null, $"unexpected reply after the end: \"{extra}\"");
        await Run.WaitAsync(Timeout);
    }

    private async Task<string?> TryReadLineAsync()
    {
        var reader = _toClient.Reader;
        using var cts = new CancellationTokenSource(Timeout);
        while (true)
        {
            var result = await reader.ReadAsync(cts.Token);
            var buffer = result.Buffer;
            if (buffer.PositionOf((byte)'\n') is { } lf)
            {
                var bytes = buffer.Slice(0, lf).ToArray();
                reader.AdvanceTo(buffer.GetPosition(1, lf));
                var line = Encoding.UTF8.GetString(bytes);
                Assert.True(line.EndsWith('\r'), $"reply line not ended by CRLF: \"{line}\"");
                return line[..^1];
            }
            if (result.IsCompleted)
            {
                Assert.True(buffer.IsEmpty, $"unterminated reply at close: \"{Encoding.UTF8.GetString(buffer.ToArray())}\"");
                reader.AdvanceTo(buffer.End);
                return null;
            }
            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Messages the session handed to the queue, in order.</summary>
    public IReadOnlyList<QueuedMessage> Stored
    {
        get
        {
            while (_queue.Announcements.TryRead(out var m)) _stored.Add(m);
            return _stored;
        }
    }

    public async Task<byte[]> ReadBodyAsync(QueuedMessage message)
    {
        using var cts = new CancellationTokenSource(Timeout);
        return await Store.ReadBodyAsync(message, cts.Token);
    }

    public async Task<string> ReadBodyTextAsync(QueuedMessage message) => Encoding.UTF8.GetString(await ReadBodyAsync(message));

    /// <summary>The trace header the session prepends to every message of this harness; its id is the message's queue id.</summary>
    public static string ReceivedHeader(string helo, string ip, string protocol, string queueId, string? onlyRecipient) =>
        $"Received: from {helo} ([{ip}])\r\n\tby localhost (Sluice) with {protocol} id {queueId}"
        + (onlyRecipient is null ? "" : $"\r\n\tfor <{onlyRecipient}>")
        + ";\r\n\tTue, 04 Mar 2025 05:06:07 +0000\r\n";

    /// <summary>Sends <paramref name="bytes"/> as consecutive writes of the given sizes (the last takes the rest).</summary>
    public async Task SendInPiecesAsync(byte[] bytes, IEnumerable<int> sizes)
    {
        var at = 0;
        foreach (var size in sizes)
        {
            if (at >= bytes.Length) break;
            var n = Math.Min(Math.Max(size, 1), bytes.Length - at);
            await SendAsync(bytes[at..(at + n)]);
            at += n;
        }
        if (at < bytes.Length) await SendAsync(bytes[at..]);
    }

    /// <summary>
    /// With writeByWrite, a write that the session may refuse to take because it has closed; false then.
    /// Lets a test stream more input than it could hold, stopping when the session hangs up.
    /// </summary>
    public bool TrySend(ReadOnlySpan<byte> bytes) => Writes.Write(bytes);

    /// <summary>
    /// With writeByWrite: completes once the session has processed every write so far and waits for
    /// more (or has stopped reading), so its private state can be inspected without a race.
    /// </summary>
    public Task WhenIdleAsync() => Writes.WhenIdleAsync().WaitAsync(Timeout);

    /// <summary>With writeByWrite: the most input the session ever left unconsumed between two reads.</summary>
    public int PeakUnconsumedInput => Writes.PeakUnconsumed;

    private WriteByWriteReader Writes => _writes ?? throw new InvalidOperationException("start the harness with writeByWrite: true");

    /// <summary>Reads every reply line up to the server's close (after a QUIT, 421 or Disconnect).</summary>
    public async Task<List<string>> ReadToEndAsync()
    {
        var lines = new List<string>();
        while (await TryReadLineAsync() is { } line) lines.Add(line);
        await Run.WaitAsync(Timeout);
        return lines;
    }

    /// <summary>The capacity of the session's message buffer (MessageContent._buffer), by reflection: what a message costs it in memory.</summary>
    public int ContentBufferCapacity
    {
        get
        {
            var content = typeof(SmtpSession).GetField("_content", BindingFlags.NonPublic | BindingFlags.Instance)?.GetValue(Session);
            Assert.NotNull(content);
            var buffer = content.GetType().GetField("_buffer", BindingFlags.NonPublic | BindingFlags.Instance);
            Assert.NotNull(buffer);
            // No buffer at all (before the first message, or after a huge one) holds nothing.
            return (buffer.GetValue(content) as ArrayBufferWriter<byte>)?.Capacity ?? 0;
        }
    }

    /// <summary>A private field of the session, by reflection (the recipient list, for instance).</summary>
    public T SessionField<T>(string name)
    {
        var field = typeof(SmtpSession).GetField(name, BindingFlags.NonPublic | BindingFlags.Instance);
        Assert.NotNull(field);
        return Assert.IsAssignableFrom<T>(field.GetValue(Session));
    }

    /// <summary>Closes the client side (a disconnect).</summary>
    public void Disconnect()
    {
        if (_writes is not null) _writes.CompleteWriting();
        else _toServer.Writer.Complete();
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            Disconnect();
            // Drain whatever the server still writes so it can complete.
            while (await TryReadLineSilentlyAsync()) { }
            await Run.WaitAsync(Timeout);
        }
        finally
        {
            await _queue.DisposeAsync();
            _dir.Dispose();
        }
    }

    private async Task<bool> TryReadLineSilentlyAsync()
    {
        using var cts = new CancellationTokenSource(Timeout);
        var result = await _toClient.Reader.ReadAsync(cts.Token);
        _toClient.Reader.AdvanceTo(result.Buffer.End);
        if (!result.IsCompleted) return true;
        await _toClient.Reader.CompleteAsync();
        return false;
    }

    private sealed record DuplexPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
