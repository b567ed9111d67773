// One queue (queue<N>) of one node, kept in PostgreSQL: a row per message (envelope fields, body, and the
// node holding it) and a row per recipient (address, DSN request, delivery state). Writes go through the
// database's group commit; a message whose every recipient is final is deleted. Ids are the database's
// identity, so they stay unique across every node that shares it. Outcomes are written only while the
// message is still this node's: one taken over by another node (this one's lease lapsed) is dropped here.
using System.Threading.Channels;
using Npgsql;
using Sluice.Core.Mail;

namespace Sluice.Queue.Postgres;

public sealed class PostgresQueueStore : IQueueStore
{
    private const short SmtpUtf8Flag = 1, EightBitFlag = 2, DoubleBounceFlag = 4;

    private const string InsertMessage = """
        WITH m AS (
            INSERT INTO sluice_message (id, queue, received_at, sender, flags, dsn_return, envelope_id, authenticated_as, body_length, body, node)
            OVERRIDING SYSTEM VALUE
            VALUES (COALESCE($14::bigint, nextval(pg_get_serial_sequence('sluice_message', 'id'))), $1, $2, $3, $4, $5, $6, $7, $8, $9, $13) RETURNING id),
        r AS (
            INSERT INTO sluice_recipient (message_id, idx, address, notify, orcpt)
            SELECT m.id, r.ord - 1, r.address, r.notify, r.orcpt
            FROM m, unnest($10::text[], $11::smallint[], $12::text[]) WITH ORDINALITY AS r(address, notify, orcpt, ord))
        """;

    /// <summary>Mail this node keeps (it delivers): no one else needs telling.</summary>
    private const string InsertOwnMessage = InsertMessage + "SELECT id FROM m";

    /// <summary>Mail for the nodes that deliver (node NULL): the notification goes out with the commit, never before it.</summary>
    private const string InsertMessageForOthers = InsertMessage + $"SELECT id, pg_notify('{PostgresQueueDatabase.NewMailChannel}', '') FROM m";

    // A final outcome is never undone: a late deferral of a recipient already done only counts the attempt. Written only while the
    // message is this node's: FOR SHARE waits for a claim in progress and then sees its result, so a claim and an outcome never cross.
    private const string UpdateRecipient = """
        UPDATE sluice_recipient SET status = CASE WHEN status = 0 THEN $3 ELSE status END, attempts = $4, next_attempt = $5, last_error = $6
        WHERE message_id = $1 AND idx = $2 AND EXISTS (SELECT 1 FROM sluice_message m WHERE m.id = $1 AND m.node = $7 FOR SHARE)
        RETURNING 1::bigint
        """;

    /// <summary>
    /// Takes over up to $3 messages that no live node holds (never held, or their node's lease ran out), oldest first; rows another
    /// claim is taking are skipped, so nodes claiming at once split the work. Each row of the result is one recipient.
    /// </summary>
    private const string ClaimMessages = """
        WITH c AS (
            UPDATE sluice_message SET node = $1, queue = $2
            WHERE id IN (SELECT id FROM sluice_message
                         WHERE node IS NULL OR node IN (SELECT name FROM sluice_node WHERE alive_until <= now())
                         ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
            RETURNING id, received_at, body_length, delay_warned, held)
        SELECT c.id, c.received_at, c.body_length, c.delay_warned, (count(*) OVER (PARTITION BY c.id))::int,
               r.idx, r.status, r.attempts, r.next_attempt, r.last_error, c.held
        FROM c JOIN sluice_recipient r ON r.message_id = c.id ORDER BY c.id, r.idx
        """;

    /// <summary>Bodies kept in memory for mail this node accepted and delivers (no read back at delivery): each at most, and in all.</summary>
    private const int MaxCachedBody = 1 << 20;
    private const long MaxCachedBytes = 64L << 20;

    private readonly PostgresQueueDatabase _db;
    private readonly TimeProvider _time;
    private int _messages, _recipients;
    /// <summary>Live messages by id, for the operator's verbs (list, show, hold...).</summary>
    private readonly Dictionary<ulong, SpooledMessage> _live = [];
    private readonly Channel<SpooledMessage> _claimed = Channel.CreateUnbounded<SpooledMessage>(new() { SingleReader = true });
    /// <summary>Bodies of mail accepted here, until the message is finished, deferred or dropped.</summary>
    private readonly Dictionary<ulong, byte[]> _bodies = [];
    private long _cachedBytes;

    private PostgresQueueStore(int number, PostgresQueueDatabase db, TimeProvider time, List<SpooledMessage> recovered)
    {
        Number = number;
        _db = db;
        _time = time;
        Recovered = recovered;
        _messages = recovered.Count;
        _recipients = recovered.Sum(m => m.PendingRecipients);
        foreach (var m in recovered) _live[m.Sequence] = m;
    }

    /// <summary>Deletes this node's finished messages of queue <paramref name="number"/> and reads the state of the others.</summary>
    internal static async Task<PostgresQueueStore> OpenAsync(int number, PostgresQueueDatabase db, TimeProvider time, CancellationToken ct)
    {
        if (!db.Delivers) return new PostgresQueueStore(number, db, time, []); // a receive-only node holds no mail
        await using (var sweep = db.Source.CreateCommand("""
            DELETE FROM sluice_message m WHERE node = $1 AND queue = $2
            AND NOT EXISTS (SELECT 1 FROM sluice_recipient r WHERE r.message_id = m.id AND r.status = 0)
            """))
        {
            sweep.Parameters.Add(new NpgsqlParameter { Value = db.Node });
            sweep.Parameters.Add(new NpgsqlParameter { Value = number });
            await sweep.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await using var read = db.Source.CreateCommand("""
            SELECT m.id, m.received_at, m.body_length, m.delay_warned, (count(*) OVER (PARTITION BY m.id))::int,
                   r.idx, r.status, r.attempts, r.next_attempt, r.last_error, m.held
            FROM sluice_message m JOIN sluice_recipient r ON r.message_id = m.id WHERE m.node = $1 AND m.queue = $2
            ORDER BY m.id, r.idx
            """);
        read.Parameters.Add(new NpgsqlParameter { Value = db.Node });
        read.Parameters.Add(new NpgsqlParameter { Value = number });
        return new PostgresQueueStore(number, db, time, await ReadMessagesAsync(read, number, ct).ConfigureAwait(false));
    }

    /// <summary>Messages and their recipients' states from rows shaped as the recovery and the claim return them (one per recipient).</summary>
    private static async Task<List<SpooledMessage>> ReadMessagesAsync(NpgsqlCommand read, int number, CancellationToken ct)
    {
        var messages = new List<SpooledMessage>();
        // Deferral texts repeat across many recipients: one string each, as the file spool's replay does.
        var texts = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var rows = await read.ExecuteReaderAsync(ct).ConfigureAwait(false);
        SpooledMessage? current = null;
        while (await rows.ReadAsync(ct).ConfigureAwait(false))
        {
            var id = rows.GetInt64(0);
            if (current is null || current.Sequence != (ulong)id)
            {
                current = new SpooledMessage(number, (ulong)id, rows.GetFieldValue<DateTimeOffset>(1), rows.GetInt32(4), rows.GetInt32(2))
                {
                    DelayWarned = rows.GetBoolean(3),
                    Held = rows.GetBoolean(10),
                };
                messages.Add(current);
            }
            var (status, attempts) = ((RecipientStatus)rows.GetInt16(6), rows.GetInt32(7));
            if (status == RecipientStatus.Pending && attempts == 0) continue; // never tried: the state it was born with
            var next = rows.IsDBNull(8) ? DateTimeOffset.MinValue : rows.GetFieldValue<DateTimeOffset>(8);
            var error = rows.IsDBNull(9) ? null : rows.GetString(9);
            if (error is not null) error = texts.TryGetValue(error, out var shared) ? shared : texts[error] = error;
            current.Set(rows.GetInt32(5), status, attempts, next, error, out _);
        }
        return messages;
    }

    /// <summary>
    /// Takes over up to <paramref name="limit"/> messages no live node holds into this queue and hands them to the todo stage;
    /// returns how many were taken. One whose recipients were all final already (its node died before deleting it) is deleted.
    /// </summary>
    internal async Task<int> ClaimAsync(int limit, CancellationToken ct)
    {
        List<SpooledMessage> claimed;
        await using (var claim = _db.Source.CreateCommand(ClaimMessages))
        {
            claim.Parameters.Add(new NpgsqlParameter { Value = _db.Node });
            claim.Parameters.Add(new NpgsqlParameter { Value = Number });
            claim.Parameters.Add(new NpgsqlParameter { Value = limit });
            claimed = await ReadMessagesAsync(claim, Number, ct).ConfigureAwait(false);
        }
        foreach (var m in claimed)
        {
            Interlocked.Increment(ref _messages);
            Interlocked.Add(ref _recipients, m.PendingRecipients);
            lock (_live) _live[m.Sequence] = m;
            if (m.PendingRecipients == 0) Finished(m);
            else _claimed.Writer.TryWrite(m);
        }
        return claimed.Count;
    }

    public int Number { get; }
    public IReadOnlyCollection<SpooledMessage> Recovered { get; }
    public ChannelReader<SpooledMessage> Claimed => _claimed.Reader;

    public async ValueTask<bool> MayDeliverAsync(SpooledMessage message, CancellationToken ct)
    {
        if (_db.LeaseLapsed || _db.ReconcileDue) await _db.UntilLeaseHeldAsync(ct).ConfigureAwait(false);
        lock (_live) return _live.ContainsKey(message.Sequence);
    }

    /// <summary>
    /// The message is another node's now (this node's lease lapsed and it was claimed): it leaves this node without a
    /// write, and the other node delivers it. Said once per message.
    /// </summary>
    internal void Drop(SpooledMessage m, string why)
    {
        lock (_live)
            if (!_live.Remove(m.Sequence)) return;
        ForgetBody(m.Sequence);
        Interlocked.Decrement(ref _messages);
        Interlocked.Add(ref _recipients, -m.Delete());
        _db.Log($"warning: msg {m.Id}: {why}; dropped here, the node holding it delivers it");
    }

    /// <summary>The ids of this queue's live messages, to compare with what the database says this node holds.</summary>
    internal ulong[] LiveIds()
    {
        lock (_live) return [.. _live.Keys];
    }
    public int MessageCount => Volatile.Read(ref _messages);
    public int RecipientCount => Volatile.Read(ref _recipients);
    public (long Syncs, long Records) CommitStats => _db.CommitStats;

    public async Task<QueuedMessage> AcceptAsync(Envelope envelope, TraceHeader? trace, ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        // A trace header names the id, so the id is taken from the identity sequence before the row is written.
        long? reserved = null;
        if (trace is not null)
        {
            reserved = await _db.NextMessageIdAsync(ct).ConfigureAwait(false);
            body = MessagePrefix.Join(trace(SpooledMessage.FormatId(Number, (ulong)reserved.Value)), body); // one bytea for the row
        }
        var received = _time.GetUtcNow();
        var count = envelope.Recipients.Count;
        var flags = (short)((envelope.SmtpUtf8 ? SmtpUtf8Flag : 0) | (envelope.EightBitMime ? EightBitFlag : 0) | (envelope.DoubleBounce ? DoubleBounceFlag : 0));
        var notify = new short[count];
        var orcpt = new string?[count];
        for (int i = 0; i < count; i++) (notify[i], orcpt[i]) = ((short)envelope.DsnOf(i).Notify, envelope.DsnOf(i).OriginalRecipient);
        var delivers = _db.Delivers;
        var id = await _db.Commits.WriteAsync(delivers ? InsertOwnMessage : InsertMessageForOthers,
            [Number, received, envelope.Sender, flags, (short)envelope.Return, envelope.EnvelopeId, envelope.AuthenticatedAs, body.Length,
             body, envelope.Recipients.ToArray(), notify, orcpt, delivers ? _db.Node : null, reserved],
            keepTrying: false, returnsId: true, bytes: body.Length).ConfigureAwait(false);
        var spooled = new SpooledMessage(Number, (ulong)id!.Value, received, count, body.Length);
        if (!delivers) return new QueuedMessage(spooled, envelope); // the delivering nodes claim it
        Interlocked.Increment(ref _messages);
        Interlocked.Add(ref _recipients, count);
        lock (_live) _live[spooled.Sequence] = spooled;
        KeepBody(spooled.Sequence, body);
        return new QueuedMessage(spooled, envelope);
    }

    public async Task RecordAsync(QueuedMessage message, int recipient, RecipientStatus status, DateTimeOffset nextAttempt, string? lastError, CancellationToken ct)
    {
        var m = message.Spooled;
        var attempts = m.States[recipient].Attempts + 1;
        var written = await _db.Commits.WriteAsync(UpdateRecipient,
            [(long)m.Sequence, recipient, (short)status, attempts, nextAttempt == DateTimeOffset.MinValue ? null : nextAttempt, lastError, _db.Node],
            keepTrying: true, returnsId: true).ConfigureAwait(false);
        if (written is null)
        {
            Drop(m, "another node holds it now (this node's lease lapsed), so this outcome is not recorded");
            return;
        }
        if (status == RecipientStatus.Pending) ForgetBody(m.Sequence); // it waits for a later try: not in memory meanwhile
        var finished = m.Set(recipient, status, attempts, nextAttempt, lastError, out var becameFinal);
        if (becameFinal) Interlocked.Decrement(ref _recipients);
        if (finished) Finished(m);
    }

    /// <summary>
    /// The message has no pending recipient left: it leaves the live set and its rows go. Not awaited: the recipients'
    /// final states (or the operator's delete) are durable, so a delete lost in a crash is redone by the next start's sweep.
    /// </summary>
    private void Finished(SpooledMessage m)
    {
        Interlocked.Decrement(ref _messages);
        lock (_live) _live.Remove(m.Sequence);
        ForgetBody(m.Sequence);
        _ = _db.Commits.WriteAsync("DELETE FROM sluice_message WHERE id = $1 AND node = $2", [(long)m.Sequence, _db.Node], keepTrying: true);
    }

    private void KeepBody(ulong sequence, ReadOnlyMemory<byte> body)
    {
        if (body.Length > MaxCachedBody) return;
        lock (_bodies)
        {
            if (_cachedBytes + body.Length > MaxCachedBytes) return;
            _bodies[sequence] = body.ToArray(); // the session reuses its buffer
            _cachedBytes += body.Length;
        }
    }

    private void ForgetBody(ulong sequence)
    {
        lock (_bodies)
            if (_bodies.Remove(sequence, out var body)) _cachedBytes -= body.Length;
    }

    public async Task RecordHoldAsync(SpooledMessage message, bool held, CancellationToken ct)
    {
        await _db.Commits.WriteAsync("UPDATE sluice_message SET held = $2 WHERE id = $1", [(long)message.Sequence, held], keepTrying: true)
            .ConfigureAwait(false);
        message.Held = held;
    }

    public async Task<int> DeleteAsync(SpooledMessage message, CancellationToken ct)
    {
        if (message.PendingRecipients == 0) return 0;
        // Durable first: every pending recipient final (status 3: deleted by the operator), so neither this node nor a restart tries them.
        await _db.Commits.WriteAsync($"UPDATE sluice_recipient SET status = {(int)RecipientStatus.Deleted} WHERE message_id = $1 AND status = 0",
            [(long)message.Sequence], keepTrying: true).ConfigureAwait(false);
        var deleted = message.Delete();
        if (deleted == 0) return 0;
        Interlocked.Add(ref _recipients, -deleted);
        Finished(message);
        return deleted;
    }

    public IReadOnlyList<SpooledMessage> LiveMessages()
    {
        lock (_live) return [.. _live.Values];
    }

    public SpooledMessage? Find(ulong sequence)
    {
        lock (_live) return _live.GetValueOrDefault(sequence);
    }

    public async Task RecordDelayWarningAsync(QueuedMessage message, CancellationToken ct)
    {
        await _db.Commits.WriteAsync("UPDATE sluice_message SET delay_warned = true WHERE id = $1", [(long)message.Spooled.Sequence], keepTrying: true)
            .ConfigureAwait(false);
        message.Spooled.DelayWarned = true;
    }

    public Task<QueuedMessage> LoadAsync(SpooledMessage message, CancellationToken ct) =>
        _db.Commits.UntilReachableAsync(() => ReadEnvelopeAsync(message, ct), ct);

    private async Task<QueuedMessage> ReadEnvelopeAsync(SpooledMessage message, CancellationToken ct)
    {
        await using var read = _db.Source.CreateCommand("""
            SELECT m.sender, m.flags, m.dsn_return, m.envelope_id, m.authenticated_as, r.address, r.notify, r.orcpt
            FROM sluice_message m JOIN sluice_recipient r ON r.message_id = m.id WHERE m.id = $1 ORDER BY r.idx
            """);
        read.Parameters.Add(new NpgsqlParameter { Value = (long)message.Sequence });
        await using var rows = await read.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var recipients = new List<string>(message.States.Count);
        var dsn = new List<RecipientDsn>(message.States.Count);
        (string Sender, short Flags, short Return, string? EnvelopeId, string? AuthenticatedAs)? head = null;
        while (await rows.ReadAsync(ct).ConfigureAwait(false))
        {
            head ??= (rows.GetString(0), rows.GetInt16(1), rows.GetInt16(2), NullableString(rows, 3), NullableString(rows, 4));
            recipients.Add(rows.GetString(5));
            dsn.Add(new RecipientDsn((DsnNotify)rows.GetInt16(6), NullableString(rows, 7)));
        }
        if (head is not { } h) throw new IOException($"queue{Number}: message {message.Id} is missing from the queue database");
        return new QueuedMessage(message, new Envelope(h.Sender, recipients)
        {
            Dsn = dsn.TrueForAll(d => d == default) ? null : dsn,
            Return = (DsnReturn)h.Return,
            EnvelopeId = h.EnvelopeId,
            AuthenticatedAs = h.AuthenticatedAs,
            SmtpUtf8 = (h.Flags & SmtpUtf8Flag) != 0,
            EightBitMime = (h.Flags & EightBitFlag) != 0,
            DoubleBounce = (h.Flags & DoubleBounceFlag) != 0,
        });
    }

    public Task<byte[]> ReadBodyAsync(QueuedMessage message, CancellationToken ct)
    {
        lock (_bodies)
            if (_bodies.TryGetValue(message.Spooled.Sequence, out var body)) return Task.FromResult(body);
        return _db.Commits.UntilReachableAsync(async () =>
        {
            await using var read = _db.Source.CreateCommand("SELECT body FROM sluice_message WHERE id = $1");
            read.Parameters.Add(new NpgsqlParameter { Value = (long)message.Spooled.Sequence });
            return await read.ExecuteScalarAsync(ct).ConfigureAwait(false) as byte[]
                ?? throw new IOException($"queue{Number}: message {message.Id} is missing from the queue database");
        }, ct);
    }

    private static string? NullableString(NpgsqlDataReader rows, int column) => rows.IsDBNull(column) ? null : rows.GetString(column);

    /// <summary>The database is shared by the node's queues and closed by its owner (<see cref="PostgresQueueDatabase"/>), which stops claiming for this queue.</summary>
    public ValueTask DisposeAsync()
    {
        _db.Closed(this);
        _claimed.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }
}
