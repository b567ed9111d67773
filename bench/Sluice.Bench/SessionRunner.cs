// Runs whole SMTP sessions over two reusable in-memory pipes with an acceptor that keeps nothing,
// so a benchmark measures the session (parsing, checks, replies) and not sockets or the spool.
using System.IO.Pipelines;
using System.Net;
using System.Reflection;
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Queue;
using Sluice.Receive;

namespace Sluice.Bench;

internal sealed class SessionRunner
{
    public const string Hostname = "bench.sluice.test";
    private static readonly IPEndPoint Client = new(IPAddress.Loopback, 40000);
    private static readonly PipeOptions Unbounded = new(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false);

    private readonly Pipe _toServer = new(Unbounded);
    private readonly Pipe _toClient = new(Unbounded);
    private readonly ReceivePolicy _policy;
    private readonly NullAcceptor _acceptor = new();
    private readonly byte[] _transcript;

    public SessionRunner(byte[] transcript)
    {
        var options = new SluiceOptions { Hostname = Hostname };
        options.Queue.Base = Path.GetTempPath(); // MAIL asks for free space here
        _policy = new ReceivePolicy(options);
        _transcript = transcript;
    }

    /// <summary>Runs the transcript once and checks every message was queued and the session ended with 221.</summary>
    public void Verify(int messages)
    {
        var before = _acceptor.Accepted;
        var replies = RunAsync(readReplies: true).GetAwaiter().GetResult();
        var queued = replies.Split("\r\n").Count(l => l.StartsWith("250 2.0.0 Ok: queued as ", StringComparison.Ordinal));
        if (queued != messages || _acceptor.Accepted - before != messages
            || !replies.EndsWith($"221 2.0.0 {Hostname} closing connection\r\n", StringComparison.Ordinal))
            throw new InvalidOperationException($"the transcript was not accepted as {messages} messages:\n{replies}");
    }

    public async Task<string> RunAsync(bool readReplies = false)
    {
        // The whole transcript is buffered before the session starts, as a pipelining client's
        // bytes would be after a burst; the pipe hands it over in 4 KiB segments.
        await _toServer.Writer.WriteAsync(_transcript).ConfigureAwait(false);
        await _toServer.Writer.CompleteAsync().ConfigureAwait(false);
        var session = new SmtpSession(_policy, _acceptor, TimeProvider.System, Client, 1);
        await session.RunAsync(new DuplexPipe(_toServer.Reader, _toClient.Writer), CancellationToken.None).ConfigureAwait(false);
        var result = await _toClient.Reader.ReadAsync().ConfigureAwait(false);
        var replies = readReplies ? Encoding.ASCII.GetString(result.Buffer) : "";
        _toClient.Reader.AdvanceTo(result.Buffer.End);
        await _toClient.Reader.CompleteAsync().ConfigureAwait(false);
        // All four ends are complete now: the pipes can be reused, so they are not what is measured.
        _toServer.Reset();
        _toClient.Reset();
        return replies;
    }

    private sealed record DuplexPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    /// <summary>Takes every message at once and keeps nothing: the spool is not what is measured.</summary>
    private sealed class NullAcceptor : IMessageAcceptor
    {
        // SpooledMessage's constructor is internal to the queue; one instance, made once, serves every reply.
        private static readonly Task<QueuedMessage> Queued = Task.FromResult(new QueuedMessage((SpooledMessage)Activator.CreateInstance(
            typeof(SpooledMessage), BindingFlags.Instance | BindingFlags.NonPublic, null, [1, 1UL, DateTimeOffset.UnixEpoch, 1, 0], null)!,
            new Envelope("bench@client.test", ["user@localhost"])));

        public int Accepted { get; private set; }

        public Task<QueuedMessage> AcceptAsync(Envelope envelope, ReadOnlyMemory<byte> body, CancellationToken ct)
        {
            Accepted++;
            return Queued;
        }
    }
}
