// bench/compare's latency workload (design.md §4): RATE messages/s, open loop, over SESSIONS persistent
// SMTP sessions; per message the time from the end of DATA (the final "\r\n.\r\n" written) to its
// reply read, for the messages sent in SECONDS seconds after WARMUP seconds at the same rate.
//
//   latency HOST:PORT RATE SECONDS WARMUP SIZE DOMAINS SESSIONS
//
// Open loop: a clock hands out send times at the rate whatever the server does, so a slow reply cannot
// slow the load down and hide itself (coordinated omission). A message that finds no idle session
// waits; that wait is reported as start lag (a server that cannot keep up shows as an achieved rate
// below RATE and a growing lag), and messages still waiting a second after the time is up are not
// sent but counted as missed. Recipients are uK@dJ.bench.test over DOMAINS domains. Lines starting
// "kv " are for the script; any reply other than the expected one ends the run with exit status 1.
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace Sluice.Bench;

internal static class LatencyInjector
{
    private static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);
    private static long Micros(long ticks) => ticks * 1_000_000 / Stopwatch.Frequency;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length != 7 || args[0].LastIndexOf(':') is var colon && colon < 1)
        {
            Console.Error.WriteLine("usage: latency HOST:PORT RATE SECONDS WARMUP SIZE DOMAINS SESSIONS");
            return 2;
        }
        var (host, port) = (args[0][..colon], Int(args[0][(colon + 1)..]));
        var (rate, seconds, warmup, size, domains, sessions) = (Int(args[1]), Int(args[2]), Int(args[3]), Int(args[4]), Int(args[5]), Int(args[6]));
        var message = Message(size);

        var connections = await Task.WhenAll(Enumerable.Range(0, sessions).Select(_ => ReplyConnection.OpenAsync(host, port)));
        var sendTimes = Channel.CreateUnbounded<long>(new UnboundedChannelOptions { SingleWriter = true });
        var start = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 10;
        var measureFrom = start + warmup * Stopwatch.Frequency;
        var end = measureFrom + seconds * Stopwatch.Frequency;
        var next = -1;
        var workers = connections.Select(c => Task.Run(async () =>
        {
            var run = new WorkerFigures();
            await foreach (var due in sendTimes.Reader.ReadAllAsync())
            {
                var begin = Stopwatch.GetTimestamp();
                if (begin >= end + Stopwatch.Frequency) { run.Missed++; continue; }
                var i = Interlocked.Increment(ref next);
                var latency = await c.TransactionAsync($"u{i}@d{i % domains + 1}.bench.test", message);
                if (begin < measureFrom) continue;
                run.Latency.Record(Micros(latency));
                run.Lag.Record(Micros(begin - due));
                run.LastReply = Math.Max(run.LastReply, Stopwatch.GetTimestamp());
            }
            return run;
        })).ToArray();

        // The clock: every millisecond or so, hand out the send times that have come due since.
        long issued = 0, total = (long)rate * (warmup + seconds);
        while (issued < total)
        {
            var dueNow = Math.Min(total, (Stopwatch.GetTimestamp() - start) * rate / Stopwatch.Frequency + 1);
            for (; issued < dueNow; issued++) sendTimes.Writer.TryWrite(start + issued * Stopwatch.Frequency / rate);
            await Task.Delay(1);
        }
        sendTimes.Writer.Complete();
        WorkerFigures[] figures;
        try { figures = await Task.WhenAll(workers); }
        catch (Exception e) when (e is SmtpRefusedException or IOException or SocketException) { Console.Error.WriteLine($"latency: {e.Message}"); return 1; }
        await Task.WhenAll(connections.Select(c => c.QuitAsync()));

        var latencies = new LatencyHistogram();
        var lags = new LatencyHistogram();
        foreach (var f in figures) { latencies.Add(f.Latency); lags.Add(f.Lag); }
        var missed = figures.Sum(f => f.Missed);
        var lastReply = figures.Max(f => f.LastReply);
        var span = Math.Max(seconds, (double)(lastReply - measureFrom) / Stopwatch.Frequency);
        static string Ms(long us) => (us / 1000.0).ToString("F3", CultureInfo.InvariantCulture);
        Console.WriteLine($"latency: {latencies.Count} messages measured at {rate}/s offered over {seconds} s (after {warmup} s warm-up), " +
            $"{latencies.Count / span:F0}/s achieved; end of DATA → reply p50 {Ms(latencies.Quantile(0.5))} ms, " +
            $"p99 {Ms(latencies.Quantile(0.99))} ms, max {Ms(latencies.MaxMicroseconds)} ms; start lag p99 {Ms(lags.Quantile(0.99))} ms; {missed} missed");
        Kv("measured", latencies.Count);
        Kv("achieved_per_s", Math.Round(latencies.Count / span));
        Kv("p50_ms", Ms(latencies.Quantile(0.5)));
        Kv("p99_ms", Ms(latencies.Quantile(0.99)));
        Kv("p999_ms", Ms(latencies.Quantile(0.999)));
        Kv("max_ms", Ms(latencies.MaxMicroseconds));
        Kv("lag_p99_ms", Ms(lags.Quantile(0.99)));
        Kv("lag_max_ms", Ms(lags.MaxMicroseconds));
        Kv("missed", missed);
        return 0;
    }

    private static void Kv(string key, object value) => Console.WriteLine(FormattableString.Invariant($"kv {key} {value}"));

    /// <summary>SIZE body bytes in 78-octet lines after a few headers, and the end of data.</summary>
    private static byte[] Message(int size)
    {
        var text = new StringBuilder("From: <sender@client.bench.test>\r\nTo: <bench@bench.test>\r\nSubject: latency\r\n\r\n");
        for (int left = size; left > 0; left -= 78) text.Append('x', Math.Min(76, Math.Max(0, left - 2))).Append("\r\n");
        return Encoding.ASCII.GetBytes(text.Append(".\r\n").ToString());
    }

    private sealed class WorkerFigures
    {
        public LatencyHistogram Latency { get; } = new();
        public LatencyHistogram Lag { get; } = new();
        public long Missed { get; set; }
        public long LastReply { get; set; }
    }
}

internal sealed class SmtpRefusedException(string message) : Exception(message);

/// <summary>One SMTP session without PIPELINING (as smtp-source): a command, then its reply.</summary>
internal sealed class ReplyConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly byte[] _buffer = new byte[4096];
    private int _start, _end;

    private ReplyConnection(Socket socket) { _socket = socket; _stream = new NetworkStream(socket, ownsSocket: true); }

    public static async Task<ReplyConnection> OpenAsync(string host, int port)
    {
        // No Nagle: a command and the peer's delayed ACK would otherwise add up to 40 ms to a reply.
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(host, port);
        var c = new ReplyConnection(socket);
        await c.ExpectAsync(220, "greeting");
        await c.CommandAsync("EHLO client.bench.test", 250);
        return c;
    }

    /// <summary>One message to one recipient; returns the ticks from the end of DATA written to the 250 read.</summary>
    public async Task<long> TransactionAsync(string recipient, byte[] message)
    {
        await CommandAsync("MAIL FROM:<sender@client.bench.test>", 250);
        await CommandAsync($"RCPT TO:<{recipient}>", 250);
        await CommandAsync("DATA", 354);
        await _stream.WriteAsync(message);
        var written = Stopwatch.GetTimestamp();
        await ExpectAsync(250, "end of data");
        return Stopwatch.GetTimestamp() - written;
    }

    public async Task QuitAsync()
    {
        await CommandAsync("QUIT", 221);
        await DisposeAsync();
    }

    public ValueTask DisposeAsync() => _stream.DisposeAsync();

    private async Task CommandAsync(string command, int expected)
    {
        await _stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\r\n"));
        await ExpectAsync(expected, command);
    }

    private async Task ExpectAsync(int expected, string after)
    {
        var reply = await ReadReplyAsync();
        if (!reply.StartsWith(expected.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal))
            throw new SmtpRefusedException($"{_socket.LocalEndPoint}: after {after}: {reply}");
    }

    /// <summary>A whole reply, its lines joined; the last line has a space after the code (RFC 5321 §4.2.1).</summary>
    private async Task<string> ReadReplyAsync()
    {
        var text = new StringBuilder();
        while (true)
        {
            var lf = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (lf < 0)
            {
                if (_start > 0) { Array.Copy(_buffer, _start, _buffer, 0, _end - _start); _end -= _start; _start = 0; }
                if (_end == _buffer.Length) throw new SmtpRefusedException("reply line longer than 4096 bytes");
                var n = await _stream.ReadAsync(_buffer.AsMemory(_end));
                if (n == 0) throw new SmtpRefusedException($"connection closed after: {text}");
                _end += n;
                continue;
            }
            var line = Encoding.ASCII.GetString(_buffer, _start, lf - _start).TrimEnd('\r');
            _start = lf + 1;
            text.Append(line).Append(' ');
            if (line.Length < 4 || line[3] != '-') return text.ToString().TrimEnd();
        }
    }
}
