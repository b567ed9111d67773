// How fast one SMTP session turns a recorded client transcript into accepted messages, with no
// socket and no spool: what the receiver itself costs per message in time and allocations.
using BenchmarkDotNet.Attributes;

namespace Sluice.Bench;

/// <summary>A new session per message: greeting, EHLO, MAIL, RCPT × Recipients, DATA (4 KiB body), QUIT.</summary>
[MemoryDiagnoser]
[MedianColumn]
public class SessionParseBenchmark
{
    public const int BodyBytes = 4096;
    private SessionRunner _runner = null!;

    [Params(1, 10, 100)]
    public int Recipients { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _runner = new SessionRunner(Transcript.Build(Recipients, BodyBytes));
        _runner.Verify(messages: 1);
    }

    [Benchmark]
    public Task Session() => _runner.RunAsync();
}

/// <summary>
/// Ten messages of one recipient in one session, figures per message: the session's own set-up
/// (its 16 KiB message buffer, timer, pipes' first reads) is shared by ten messages instead of one.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class SessionReuseBenchmark
{
    public const int Messages = 10;
    private SessionRunner _runner = null!;

    [GlobalSetup]
    public void Setup()
    {
        _runner = new SessionRunner(Transcript.Build(1, SessionParseBenchmark.BodyBytes, Messages));
        _runner.Verify(Messages);
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    public Task TenMessagesPerSession() => _runner.RunAsync();
}
