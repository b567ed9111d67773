// A real SMTP server on loopback that accepts every message and remembers it: the far end of
// relay tests (our own, so a test can await arrivals instead of sleeping).
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Sluice.Testing;

public sealed class SmtpSink : IAsyncDisposable
{
    public sealed record Received(string Sender, IReadOnlyList<string> Recipients, string Data)
    {
        /// <summary>What followed the reverse-path on MAIL, e.g. "RET=HDRS ENVID=x" ("" for nothing).</summary>
        public string MailParameters { get; init; } = "";
        /// <summary>What followed each forward-path on RCPT, in the order of <see cref="Recipients"/>.</summary>
        public IReadOnlyList<string> RecipientParameters { get; init; } = [];
    }

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly Lock _lock = new();
    private readonly List<(int Count, TaskCompletionSource Done)> _waiters = [];

    public SmtpSink()
    {
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public ConcurrentQueue<Received> Messages { get; } = new();
    /// <summary>A reply to give instead of 250 for the data of a message, for failure tests.</summary>
    public Func<Received, string>? DataReply { get; set; }
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

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        try
        {
            var stream = client.GetStream();
            using var reader = new StreamReader(stream, Encoding.Latin1);
            await using var writer = new StreamWriter(stream, Encoding.Latin1) { NewLine = "\r\n", AutoFlush = false };
            async Task Say(string line) { await writer.WriteLineAsync(line); await writer.FlushAsync(); }
            await writer.WriteLineAsync("220 sink.test ESMTP"); await writer.FlushAsync();
            string sender = "", mailParameters = "";
            var rcpts = new List<string>();
            var rcptParameters = new List<string>();
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                var verb = line.Length >= 4 ? line[..4].ToUpperInvariant() : line.ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO":
                        var offered = Extensions.Count > 0 ? Extensions : ["HELP"];
                        await writer.WriteLineAsync("250-sink.test");
                        for (int i = 0; i < offered.Count; i++) await writer.WriteLineAsync((i < offered.Count - 1 ? "250-" : "250 ") + offered[i]);
                        await writer.FlushAsync();
                        break;
                    case "MAIL": sender = Between(line); mailParameters = After(line); rcpts.Clear(); rcptParameters.Clear(); await Say("250 2.1.0 ok"); break;
                    case "RCPT": rcpts.Add(Between(line)); rcptParameters.Add(After(line)); await Say("250 2.1.5 ok"); break;
                    case "DATA":
                        await writer.WriteLineAsync("354 go"); await writer.FlushAsync();
                        var data = new StringBuilder();
                        string? d;
                        while ((d = await reader.ReadLineAsync(_stop.Token)) is not null && d != ".") data.Append(d.StartsWith('.') ? d[1..] : d).Append("\r\n");
                        if (d is null) return; // cut off before the end of data: not a message
                        var received = new Received(sender, [.. rcpts], data.ToString()) { MailParameters = mailParameters, RecipientParameters = [.. rcptParameters] };
                        var reply = DataReply?.Invoke(received) ?? "250 2.0.0 queued";
                        if (reply.StartsWith('2')) Add(received);
                        await Say(reply);
                        break;
                    case "QUIT": await writer.WriteLineAsync("221 bye"); await writer.FlushAsync(); return;
                    default: await Say("250 ok"); break;
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException) { }
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
        _listener.Stop();
        try { await _accepting; } catch (OperationCanceledException) { }
    }
}
