// Local delivery into Maildir (https://cr.yp.to/proto/maildir.html): write into tmp/, fsync,
// rename into new/, fsync new/ so the name survives a crash. A file in new/ is always complete.
// The mailbox map says which Maildir and Maildir++ folder an address reaches and its quota,
// kept in maildirsize as Maildir++ readers (Dovecot, Courier) expect.
using System.Globalization;
using System.Text;
using Sluice.Core.IO;
using Sluice.Core.Mail;
using Sluice.Core.Mailboxes;

namespace Sluice.Delivery.Maildir;

/// <param name="permissions">Who may read what is created (Mailboxes.Mode, Owner, Group); null: the server's user only.</param>
public sealed class MaildirAgent(string root, string hostname, MailboxMap mailboxes, TimeProvider time, MaildirPermissions? permissions = null) : IDeliveryAgent
{
    private static long _counter;
    // Deliveries block in fsync on these threads; 8, 16 and 64 of them gave the same rate into 100 mailboxes (bench/local.sh).
    private readonly BlockingWorkers _disk = new("maildir", 16);
    private readonly DirectorySyncGroup _newSyncs = new();
    private readonly HashSet<string> _created = [];
    private readonly Lock _createdLock = new();
    // maildirsize is rebuilt by counting new/ and cur/ and appended to after each rename into new/: both under one
    // lock per mailbox, so a rebuild never misses or double-counts a message landing beside it.
    private readonly Lock[] _sizeLocks = [.. Enumerable.Range(0, 64).Select(_ => new Lock())];
    private readonly string _hostPart = hostname.Replace("/", "\\057", StringComparison.Ordinal).Replace(":", "\\072", StringComparison.Ordinal);
    private MailboxMap _mailboxes = mailboxes;
    private readonly MaildirPermissions _permissions = permissions ?? MaildirPermissions.Private;

    /// <summary>Who lives where; a reload replaces it, deliveries in progress keep the one they started with.</summary>
    public MailboxMap Mailboxes
    {
        get => Volatile.Read(ref _mailboxes);
        set => Volatile.Write(ref _mailboxes, value);
    }

    public async Task<RecipientResult[]> DeliverAsync(DeliveryRequest request, CancellationToken ct)
    {
        var results = new RecipientResult[request.Recipients.Count];
        var body = ToUnixLines(request.Message.Span);
        var mailboxes = Mailboxes;
        for (int i = 0; i < results.Length; i++)
            results[i] = await DeliverOneAsync(request, request.Recipients[i], mailboxes, body, ct).ConfigureAwait(false);
        return results;
    }

    private async Task<RecipientResult> DeliverOneAsync(DeliveryRequest request, string recipient, MailboxMap mailboxes, byte[] body, CancellationToken ct)
    {
        var found = mailboxes.Find(recipient);
        // Aliases are expanded when mail is queued (AliasSplit); one here was made an alias by a reload since.
        if (found.Mailbox is not { } mailbox)
            return RecipientResult.Failed(found.Unknown ? $"550 5.1.1 <{recipient}>: no such user here" : $"550 5.1.1 <{recipient}>: an alias since this message was queued, so not expanded for it");
        ct.ThrowIfCancellationRequested();
        return await _disk.RunAsync(() => Write(request, recipient, mailbox, mailboxes.CreateExtensionFolders, body)).ConfigureAwait(false);
    }

    /// <summary>The file work of one delivery, on a disk thread: it blocks in fsync twice.</summary>
    private RecipientResult Write(DeliveryRequest request, string recipient, Mailbox mailbox, bool createFolders, byte[] body)
    {
        var maildir = Path.Combine(root, mailbox.Directory);
        var folder = mailbox.Folder is { } f && (createFolders || Directory.Exists(Path.Combine(maildir, "." + f))) ? "." + f : null;
        var target = folder is null ? maildir : Path.Combine(maildir, folder);
        var where = folder is null ? mailbox.Directory : $"{mailbox.Directory}/{folder}";
        // Return-Path and Delivered-To as qmail-local writes them (RFC 5321 §4.4).
        var trace = Encoding.UTF8.GetBytes($"Return-Path: <{request.Sender}>\nDelivered-To: {recipient}\n");
        var size = trace.Length + body.Length;
        // ",S=size": the Maildir++ size in the name, which Dovecot and quota recalculation read instead of stat(2).
        var name = $"{UniqueName()},S={size}";
        var tmp = Path.Combine(target, "tmp", name);
        try
        {
            EnsureMaildir(maildir, isFolder: false);
            if (folder is not null) EnsureMaildir(target, isFolder: true);
            var sizeLock = _sizeLocks[(uint)StringComparer.Ordinal.GetHashCode(maildir) % (uint)_sizeLocks.Length];
            long used = 0;
            if (mailbox.QuotaBytes is { } quota && (used = UsageOf(maildir, quota, sizeLock)) + size > quota)
                return RecipientResult.Deferred($"452 4.2.2 <{recipient}>: mailbox full ({used} of {quota} bytes used, message {size})");
            using (var file = new FileStream(tmp, MaildirPermissions.NewFile()))
            {
                var handle = file.SafeFileHandle;
                RandomAccess.Write(handle, [trace, body], 0); // one pwritev
                _permissions.Apply(handle, tmp); // before the rename: a reader never sees it with other owners or bits
                DurableFile.Sync(handle);
            }
            lock (sizeLock)
            {
                File.Move(tmp, Path.Combine(target, "new", name));
                MaildirSize.Add(maildir, size);
            }
            _newSyncs.Sync(Path.Combine(target, "new"));
            return RecipientResult.Delivered($"250 2.0.0 delivered to maildir {where}/new/{name}");
        }
        catch (IOException e)
        {
            TryDelete(tmp);
            return RecipientResult.Deferred($"451 4.3.0 maildir {where}: {e.Message}");
        }
        catch (UnauthorizedAccessException e)
        {
            TryDelete(tmp);
            return RecipientResult.Deferred($"451 4.3.0 maildir {where}: {e.Message}");
        }
    }

    private long UsageOf(string maildir, long quota, Lock sizeLock)
    {
        lock (sizeLock) return MaildirSize.Usage(maildir, quota, _permissions);
    }

    /// <param name="isFolder">A Maildir++ folder is marked with "maildirfolder", as Courier and Dovecot expect.</param>
    private void EnsureMaildir(string dir, bool isFolder)
    {
        lock (_createdLock) if (_created.Contains(dir)) return;
        foreach (var sub in new[] { "tmp", "new", "cur" }) _permissions.CreateDirectory(root, Path.Combine(dir, sub));
        var marker = Path.Combine(dir, "maildirfolder");
        if (isFolder) // two first deliveries may race here: opening an existing marker is no error
            using (var file = new FileStream(marker, MaildirPermissions.NewFile(FileMode.OpenOrCreate))) _permissions.Apply(file.SafeFileHandle, marker);
        // Each directory up to the root may be new (a virtual domain's, a folder's Maildir): fsync them all so their names survive a crash.
        for (var d = dir; ; d = Path.GetDirectoryName(d)!)
        {
            DurableFile.SyncDirectory(d);
            if (d.Length <= root.Length) break;
        }
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

    public ValueTask DisposeAsync()
    {
        _disk.Dispose();
        return ValueTask.CompletedTask;
    }
}
