// Local delivery into Maildir (https://cr.yp.to/proto/maildir.html): write into tmp/, fsync,
// rename into new/, fsync new/ so the name survives a crash. A file in new/ is always complete.
using System.Globalization;
using System.Text;
using Sluice.Core.IO;
using Sluice.Core.Mail;

namespace Sluice.Delivery.Maildir;

public sealed class MaildirAgent(string root, string hostname, TimeProvider time) : IDeliveryAgent
{
    private static long _counter;
    private readonly HashSet<string> _created = [];
    private readonly Lock _createdLock = new();
    private readonly string _hostPart = hostname.Replace("/", "\\057", StringComparison.Ordinal).Replace(":", "\\072", StringComparison.Ordinal);

    public async Task<RecipientResult[]> DeliverAsync(DeliveryRequest request, CancellationToken ct)
    {
        var results = new RecipientResult[request.Recipients.Count];
        var body = ToUnixLines(request.Message.Span);
        for (int i = 0; i < results.Length; i++)
            results[i] = await DeliverOneAsync(request, request.Recipients[i], body, ct).ConfigureAwait(false);
        return results;
    }

    private async Task<RecipientResult> DeliverOneAsync(DeliveryRequest request, string recipient, byte[] body, CancellationToken ct)
    {
        var mailbox = Address.LocalPartOf(recipient).ToLowerInvariant();
        if (mailbox.Length == 0 || mailbox.StartsWith('.') || mailbox.Contains('/', StringComparison.Ordinal) || mailbox.Contains('\0', StringComparison.Ordinal))
            return RecipientResult.Failed($"550 5.1.3 <{recipient}>: local part cannot name a mailbox");
        var dir = Path.Combine(root, mailbox);
        var name = UniqueName();
        var tmp = Path.Combine(dir, "tmp", name);
        try
        {
            EnsureMaildir(dir);
            // Return-Path and Delivered-To as qmail-local writes them (RFC 5321 §4.4).
            var trace = Encoding.UTF8.GetBytes($"Return-Path: <{request.Sender}>\nDelivered-To: {recipient}\n");
            using (var handle = File.OpenHandle(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                await RandomAccess.WriteAsync(handle, trace, 0, ct).ConfigureAwait(false);
                await RandomAccess.WriteAsync(handle, body, trace.Length, ct).ConfigureAwait(false);
                DurableFile.Sync(handle);
            }
            File.Move(tmp, Path.Combine(dir, "new", name));
            DurableFile.SyncDirectory(Path.Combine(dir, "new"));
            return RecipientResult.Delivered($"250 2.0.0 delivered to maildir {mailbox}/new/{name}");
        }
        catch (IOException e)
        {
            TryDelete(tmp);
            return RecipientResult.Deferred($"451 4.3.0 maildir {mailbox}: {e.Message}");
        }
        catch (UnauthorizedAccessException e)
        {
            TryDelete(tmp);
            return RecipientResult.Deferred($"451 4.3.0 maildir {mailbox}: {e.Message}");
        }
    }

    private void EnsureMaildir(string dir)
    {
        lock (_createdLock) if (_created.Contains(dir)) return;
        foreach (var sub in new[] { "tmp", "new", "cur" }) Directory.CreateDirectory(Path.Combine(dir, sub));
        DurableFile.SyncDirectory(dir);
        DurableFile.SyncDirectory(Path.GetDirectoryName(dir)!);
        lock (_createdLock) _created.Add(dir);
    }

    /// <summary>time.M&lt;usec&gt;P&lt;pid&gt;Q&lt;n&gt;.host: unique per the Maildir spec's modern form.</summary>
    private string UniqueName()
    {
        var now = time.GetUtcNow();
        var usec = now.Ticks / 10 % 1_000_000;
        return string.Create(CultureInfo.InvariantCulture,
            $"{now.ToUnixTimeSeconds()}.M{usec}P{Environment.ProcessId}Q{Interlocked.Increment(ref _counter)}.{_hostPart}");
    }

    /// <summary>Maildir files use the local newline convention, LF, as qmail-local and Postfix write them.</summary>
    private static byte[] ToUnixLines(ReadOnlySpan<byte> message)
    {
        var output = new byte[message.Length];
        int n = 0;
        while (message.Length > 0)
        {
            var i = message.IndexOf("\r\n"u8);
            var chunk = i < 0 ? message : message[..i];
            chunk.CopyTo(output.AsSpan(n));
            n += chunk.Length;
            if (i < 0) break;
            output[n++] = (byte)'\n';
            message = message[(i + 2)..];
        }
        return output[..n];
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
