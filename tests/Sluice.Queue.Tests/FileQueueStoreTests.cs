// The file spool against a real directory: durability across reopen, group commit, recovery of a
// torn tail, segment retirement, and one owner per spool.
using System.Text;
using Sluice.Core.Mail;
using Sluice.Queue.Spool;
using Sluice.Testing;

namespace Sluice.Queue.Tests;

public sealed class FileQueueStoreTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly List<string> _warnings = [];
    private static readonly CancellationToken None = CancellationToken.None;

    private FileQueueStore Open(long segmentBytes = 64L << 20) =>
        FileQueueStore.Open(1, _dir.Path, segmentBytes, TimeProvider.System, _warnings.Add);

    private static byte[] Body(string text) => Encoding.ASCII.GetBytes(text);

    [Fact]
    public async Task Dsn_utf8_and_auth_envelope_fields_survive_reopen()
    {
        var envelope = new Envelope("jörg@x.test", ["b@y.test", "c@z.test"])
        {
            Return = DsnReturn.Headers,
            EnvelopeId = "QQ314159",
            SmtpUtf8 = true,
            EightBitMime = true,
            DoubleBounce = true,
            AuthenticatedAs = "jorg",
            Dsn = [new(DsnNotify.Success | DsnNotify.Failure, "rfc822;b@y.test"), new(DsnNotify.Never, null)],
        };
        await using (var store = Open())
            await store.AcceptAsync(envelope, null, Body("x\r\n"), None);
        await using var again = Open();
        var e = (await again.LoadAsync(Assert.Single(again.Recovered), None)).Envelope;
        Assert.Equal("jörg@x.test", e.Sender);
        Assert.Equal((DsnReturn.Headers, "QQ314159", true, true, "jorg"), (e.Return, e.EnvelopeId, e.SmtpUtf8, e.EightBitMime, e.AuthenticatedAs));
        Assert.True(e.DoubleBounce);
        Assert.Equal(envelope.Dsn, e.Dsn);
        Assert.True(e.DsnOf(0).Wants(DsnNotify.Success));
        Assert.False(e.DsnOf(1).Wants(DsnNotify.Failure));
    }

    [Fact]
    public async Task A_trace_header_is_made_with_the_message_id_and_stored_in_front_of_the_body_across_reopen()
    {
        string id, named = "";
        await using (var store = Open())
        {
            var m = await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), queueId =>
            {
                named = queueId;
                return Body($"Received: by x id {queueId}\r\n");
            }, Body("Subject: s\r\n\r\nbody\r\n"), None);
            id = m.Id;
            Assert.Equal($"Received: by x id {id}\r\nSubject: s\r\n\r\nbody\r\n", Encoding.ASCII.GetString(await store.ReadBodyAsync(m, None)));
        }
        Assert.Equal(id, named);
        await using var again = Open();
        var recovered = await again.LoadAsync(Assert.Single(again.Recovered), None);
        Assert.Equal($"Received: by x id {id}\r\nSubject: s\r\n\r\nbody\r\n", Encoding.ASCII.GetString(await again.ReadBodyAsync(recovered, None)));
        Assert.Empty(_warnings); // the checksum covers trace and body
    }

    [Fact]
    public async Task The_double_bounce_flag_survives_reopen_without_other_fields()
    {
        await using (var store = Open())
        {
            await store.AcceptAsync(new Envelope("", ["postmaster@x.test"]) { DoubleBounce = true }, null, Body("x\r\n"), None);
            await store.AcceptAsync(new Envelope("", ["alice@x.test"]) { SmtpUtf8 = true }, null, Body("y\r\n"), None);
        }
        await using var again = Open();
        var envelopes = await Task.WhenAll(again.Recovered.Select(async m => (await again.LoadAsync(m, None)).Envelope));
        Assert.Equal([(true, false), (false, true)], envelopes.Select(e => (e.DoubleBounce, e.SmtpUtf8)));
        Assert.All(envelopes, e => Assert.Null(e.Dsn));
    }

    [Fact]
    public async Task An_accepted_message_is_recovered_with_envelope_and_body_after_reopen()
    {
        string id;
        await using (var store = Open())
            id = (await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test", "c@z.test"]), null, Body("Subject: s\r\n\r\nbody\r\n"), None)).Id;
        await using var again = Open();
        var m = await again.LoadAsync(Assert.Single(again.Recovered), None);
        Assert.Equal(id, m.Id);
        Assert.Equal("a@x.test", m.Sender);
        Assert.Equal(["b@y.test", "c@z.test"], m.Recipients);
        Assert.Equal("Subject: s\r\n\r\nbody\r\n", Encoding.ASCII.GetString(await again.ReadBodyAsync(m, None)));
        Assert.Equal(2, again.RecipientCount);
    }

    [Fact]
    public async Task Concurrent_accepts_share_fsyncs()
    {
        await using var store = Open();
        await Task.WhenAll(Enumerable.Range(0, 200).Select(i => store.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, Body($"m{i}\r\n"), None)));
        var (syncs, records) = store.CommitStats;
        Assert.Equal(200, records);
        Assert.True(syncs < records / 2, $"{syncs} fsyncs for {records} records");
    }

    [Fact]
    public async Task Delivery_states_survive_reopen_and_finished_messages_are_not_recovered()
    {
        var next = DateTimeOffset.UtcNow.AddMinutes(5);
        await using (var store = Open())
        {
            var done = await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, Body("1\r\n"), None);
            var half = await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test", "c@y.test"]), null, Body("2\r\n"), None);
            await store.RecordAsync(done, 0, RecipientStatus.Delivered, DateTimeOffset.MinValue, "250 ok", None);
            await store.RecordAsync(half, 0, RecipientStatus.Failed, DateTimeOffset.MinValue, "550 5.1.1 no", None);
            await store.RecordAsync(half, 1, RecipientStatus.Pending, next, "451 4.4.1 later", None);
            Assert.Equal(1, store.MessageCount);
            Assert.Equal(1, store.RecipientCount);
        }
        await using var again = Open();
        var m = Assert.Single(again.Recovered);
        Assert.Equal(RecipientStatus.Failed, m.States[0].Status);
        Assert.Equal(RecipientStatus.Pending, m.States[1].Status);
        Assert.Equal(1, m.States[1].Attempts);
        Assert.Equal(next.ToUnixTimeMilliseconds(), m.States[1].NextAttempt.ToUnixTimeMilliseconds());
        Assert.Equal("451 4.4.1 later", m.States[1].LastError);
        Assert.Equal(1, m.PendingRecipients);
    }

    [Fact]
    public async Task The_delay_warning_mark_survives_reopen()
    {
        await using (var store = Open())
        {
            var warned = await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, Body("1\r\n"), None);
            await store.AcceptAsync(new Envelope("a@x.test", ["c@y.test"]), null, Body("2\r\n"), None);
            await store.RecordDelayWarningAsync(warned, None);
            Assert.True(warned.Spooled.DelayWarned);
        }
        await using var again = Open();
        var recovered = again.Recovered.OrderBy(m => m.Id, StringComparer.Ordinal).ToList();
        Assert.Equal([true, false], recovered.Select(m => m.DelayWarned));
    }

    [Fact]
    public async Task A_recovered_message_is_due_at_its_earliest_pending_recipient()
    {
        var soon = DateTimeOffset.UtcNow.AddMinutes(1);
        await using (var store = Open())
        {
            var m = await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test", "c@y.test", "d@y.test"]), null, Body("1\r\n"), None);
            await store.RecordAsync(m, 0, RecipientStatus.Failed, DateTimeOffset.MinValue, "550 5.1.1 no", None);
            await store.RecordAsync(m, 1, RecipientStatus.Pending, soon.AddMinutes(4), "451 later", None);
            await store.RecordAsync(m, 2, RecipientStatus.Pending, soon, "451 later", None);
        }
        await using var again = Open();
        var waiting = Assert.Single(again.Recovered);
        Assert.Equal(soon.ToUnixTimeMilliseconds(), waiting.Due.ToUnixTimeMilliseconds());
        waiting.MakeDue();
        Assert.Equal(DateTimeOffset.MinValue, waiting.Due);
        Assert.Equal(RecipientStatus.Failed, waiting.States[0].Status);
    }

    [Fact]
    public async Task Records_are_followed_by_zeros_that_replay_takes_for_the_end_of_the_segment()
    {
        QueuedMessage last;
        await using (var store = Open(segmentBytes: 4 << 20))
        {
            for (int i = 0; i < 3; i++) await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, Body($"m{i}\r\n"), None);
            last = await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, Body("last\r\n"), None);
        }
        var path = SegmentOf(last);
        var recordsEnd = last.Spooled.BodyOffset + last.Spooled.BodyLength;
        var bytes = await File.ReadAllBytesAsync(path);
        // A megabyte of zeros went out with the first batch, so the later ones overwrote them instead of growing the file.
        Assert.InRange(bytes.Length, (1 << 20) + 1, (1 << 20) + recordsEnd - 1);
        Assert.False(bytes.AsSpan((int)recordsEnd).ContainsAnyExcept((byte)0));

        await using var again = Open(segmentBytes: 4 << 20);
        Assert.Equal(4, again.Recovered.Count);
        Assert.Empty(_warnings);
    }

    [Fact]
    public async Task A_torn_write_at_the_end_is_ignored_and_everything_before_it_recovered()
    {
        QueuedMessage last = null!;
        await using (var store = Open())
            for (int i = 0; i < 5; i++) last = await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, Body($"m{i}\r\n"), None);
        // A batch cut short: its first bytes reached the zeros after the last record, the rest did not.
        const string Torn = "\x40\0\0\0garbage-of-an-unfinished-write";
        await using (var segment = new FileStream(SegmentOf(last), FileMode.Open, FileAccess.Write))
        {
            segment.Position = last.Spooled.BodyOffset + last.Spooled.BodyLength;
            await segment.WriteAsync(Encoding.Latin1.GetBytes(Torn));
        }
        await using var again = Open();
        Assert.Equal(5, again.Recovered.Count);
        // Only the torn bytes are counted, not the zeros after them.
        Assert.Contains($"queue1: {SegmentOf(last)}: ignoring {Torn.Length} bytes of an unfinished write at offset {last.Spooled.BodyOffset + last.Spooled.BodyLength}", _warnings);
    }

    [Fact]
    public async Task A_corrupted_record_is_not_taken_for_a_message()
    {
        await using (var store = Open())
            await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, Body("intact\r\n"), None);
        var path = SpoolReplay.ListSegments(_dir.Path).Select(s => SpoolReplay.SegmentPath(_dir.Path, s)).First(p => new FileInfo(p).Length > 0);
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[Encoding.ASCII.GetString(bytes).IndexOf("intact", StringComparison.Ordinal)] ^= 0xFF; // a body byte: the CRC no longer matches
        await File.WriteAllBytesAsync(path, bytes);
        await using var again = Open();
        Assert.Empty(again.Recovered);
        Assert.NotEmpty(_warnings);
    }

    [Fact]
    public async Task Finished_segments_are_deleted_and_a_live_one_pins_only_itself_and_later()
    {
        var big = new byte[300 * 1024];
        await using var store = Open(segmentBytes: 1 << 20);
        var messages = new List<QueuedMessage>();
        for (int i = 0; i < 12; i++) messages.Add(await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, big, None));
        Assert.True(SpoolReplay.ListSegments(_dir.Path).Count() >= 3);
        foreach (var m in messages.Skip(1))
            await store.RecordAsync(m, 0, RecipientStatus.Delivered, DateTimeOffset.MinValue, "250", None);
        Assert.True(SpoolReplay.ListSegments(_dir.Path).Count() >= 3, "the first message still pins its segment and those after it");
        await store.RecordAsync(messages[0], 0, RecipientStatus.Delivered, DateTimeOffset.MinValue, "250", None);
        Assert.Single(SpoolReplay.ListSegments(_dir.Path));
        Assert.Equal(0, store.MessageCount);
    }

    [Fact]
    public async Task A_second_owner_of_the_same_spool_is_refused()
    {
        await using var store = Open();
        var e = Assert.Throws<IOException>(() => Open());
        Assert.Contains("in use by another sluice process", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Message_ids_keep_increasing_across_reopen()
    {
        ulong first;
        await using (var store = Open())
            first = (await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, Body("1\r\n"), None)).Spooled.Sequence;
        await using var again = Open();
        Assert.True((await again.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, Body("2\r\n"), None)).Spooled.Sequence > first);
    }

    [Fact]
    public async Task Hold_release_and_delete_are_kept_across_reopen()
    {
        string kept, deleted;
        await using (var store = Open())
        {
            var a = await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, Body("a\r\n"), None);
            var b = await store.AcceptAsync(new Envelope("a@x.test", ["c@y.test", "d@y.test"]), null, Body("b\r\n"), None);
            var c = await store.AcceptAsync(new Envelope("a@x.test", ["e@y.test"]), null, Body("c\r\n"), None);
            await store.RecordHoldAsync(a.Spooled, true, None);
            await store.RecordHoldAsync(c.Spooled, true, None);
            await store.RecordHoldAsync(c.Spooled, false, None);
            await store.RecordAsync(b, 0, RecipientStatus.Delivered, DateTimeOffset.MinValue, "250", None);
            Assert.Equal(1, await store.DeleteAsync(b.Spooled, None));
            Assert.Equal(0, await store.DeleteAsync(b.Spooled, None));
            Assert.Equal((2, 2), (store.MessageCount, store.RecipientCount));
            Assert.Null(store.Find(b.Spooled.Sequence));
            Assert.Same(a.Spooled, store.Find(a.Spooled.Sequence));
            Assert.Equal([a.Id, c.Id], store.LiveMessages().Select(m => m.Id).Order());
            (kept, deleted) = (a.Id, b.Id);
        }
        await using var again = Open();
        Assert.Equal([(kept, true), (kept, false)], again.Recovered.Select(m => (kept, m.Held)));
        Assert.Equal(kept, again.Recovered.First().Id);
        Assert.DoesNotContain(again.Recovered, m => m.Id == deleted);
        Assert.Equal(2, again.LiveMessages().Count);
    }

    [Fact]
    public async Task A_damaged_record_in_the_middle_is_copied_aside_and_the_records_after_it_recovered()
    {
        var bodies = new[] { "first\r\n", "second-is-damaged\r\n", "third\r\n" };
        await using (var store = Open())
            foreach (var body in bodies) await store.AcceptAsync(new Envelope("a@x.test", ["b@y.test"]), null, Body(body), None);
        var path = SpoolReplay.ListSegments(_dir.Path).Select(s => SpoolReplay.SegmentPath(_dir.Path, s)).First(p => new FileInfo(p).Length > 0);
        var bytes = await File.ReadAllBytesAsync(path);
        var at = Encoding.ASCII.GetString(bytes).IndexOf("second", StringComparison.Ordinal);
        bytes[at] ^= 0xFF;
        await File.WriteAllBytesAsync(path, bytes);

        await using (var again = Open())
        {
            var recovered = await Task.WhenAll(again.Recovered.Select(async m => Encoding.ASCII.GetString(await again.ReadBodyAsync(await again.LoadAsync(m, None), None))));
            Assert.Equal([bodies[0], bodies[2]], recovered);
        }
        var aside = Assert.Single(Directory.GetFiles(SpoolReplay.CorruptDirectory(_dir.Path)));
        Assert.Contains("econd-is-damaged", Encoding.Latin1.GetString(await File.ReadAllBytesAsync(aside)), StringComparison.Ordinal);
        Assert.Contains(_warnings, w => w.Contains("damaged bytes at offset", StringComparison.Ordinal) && w.Contains(aside, StringComparison.Ordinal)
            && w.Contains("the intact records after them are read", StringComparison.Ordinal));
        // A second start finds the same damage and says it was copied already; nothing is lost in between.
        _warnings.Clear();
        await using var third = Open();
        Assert.Equal(2, third.Recovered.Count);
        Assert.Contains(_warnings, w => w.Contains($"already copied to {aside}", StringComparison.Ordinal));
    }

    private string SegmentOf(QueuedMessage message) => SpoolReplay.SegmentPath(_dir.Path, message.Spooled.Segment);

    public void Dispose() => _dir.Dispose();
}
