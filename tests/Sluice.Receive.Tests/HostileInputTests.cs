// What a hostile or broken client can send: smuggling (RFC 5321 §2.3.8, §4.1.1.4), overlong lines
// (§4.5.3.1), NUL and bad UTF-8, floods, size and hop limits, header injection and relay tricks.
using System.Buffers;
using System.Net;
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;

namespace Sluice.Receive.Tests;

public sealed class HostileInputTests
{
    private const string BareLf = "550 5.6.0 Message contains bare LF line endings (RFC 5321 §2.3.8); use CRLF";
    private const string BareCr = "550 5.6.0 Message contains a bare CR (RFC 5321 §2.3.8); use CRLF";
    private const string TooLongCommand = "500 5.5.6 Command line too long (RFC 5321 §4.5.3.1.4)";
    private const string BadCommandByte = "500 5.5.2 Error: bare CR or NUL in command line";
    private const string NotUtf8 = "500 5.5.2 Error: command line is not valid UTF-8";
    private const int Block = 64 * 1024;

    // ---- SMTP smuggling (RFC 5321 §4.1.1.4: only CRLF "." CRLF ends the data) ----------------

    /// <summary>A fake end of data followed by a whole second transaction, the SMTP smuggling payload.</summary>
    private static string Smuggling(string fakeEnd) =>
        "Subject: outer\r\n\r\ntext" + fakeEnd +
        "MAIL FROM:<admin@localhost>\r\nRCPT TO:<victim@localhost>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n";

    public static TheoryData<string, bool> FakeEnds() => new()
    {
        { "\n.\n", false }, { "\n.\r\n", false }, { "\r\n.\n", false }, { "\r.\r", false }, { "\r.\r\n", false },
        { "\n.\n", true }, { "\n.\r\n", true }, { "\r\n.\n", true }, { "\r.\r", true }, { "\r.\r\n", true },
    };

    private static string RefusalFor(string fakeEnd) => fakeEnd.StartsWith("\r.", StringComparison.Ordinal) ? BareCr : BareLf;

    [Theory]
    [MemberData(nameof(FakeEnds))]
    public async Task A_smuggled_end_of_data_inside_DATA_refuses_the_whole_message_and_never_splits_it(string fakeEnd, bool bytePerWrite)
    {
        await using var h = await SessionHarness.StartEhloAsync(writeByWrite: true);
        var input = "MAIL FROM:<a@b.test>\r\nRCPT TO:<user@localhost>\r\nDATA\r\n" + Smuggling(fakeEnd) + "NOOP\r\n";
        await SendAsync(h, Encoding.UTF8.GetBytes(input), bytePerWrite);
        h.Disconnect();
        // Exactly one verdict for the data: the smuggled MAIL, RCPT and DATA never got a reply of their own.
        Assert.Equal(["250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>", RefusalFor(fakeEnd), "250 2.0.0 Ok"], await h.ReadToEndAsync());
        Assert.Empty(h.Stored);
        Assert.Equal(0, h.Store.MessageCount);
    }

    [Theory]
    [MemberData(nameof(FakeEnds))]
    public async Task A_smuggled_end_of_data_inside_a_BDAT_chunk_is_only_data_and_the_message_is_refused(string fakeEnd, bool bytePerWrite)
    {
        // RFC 3030 §2: a chunk is exactly its octets, so nothing in it can end it or start a command.
        await using var h = await SessionHarness.StartEhloAsync(writeByWrite: true);
        var chunk = Encoding.UTF8.GetBytes(Smuggling(fakeEnd));
        var input = Encoding.UTF8.GetBytes($"MAIL FROM:<a@b.test>\r\nRCPT TO:<user@localhost>\r\nBDAT {chunk.Length}\r\n")
            .Concat(chunk).Concat("BDAT 0 LAST\r\nNOOP\r\n"u8.ToArray()).ToArray();
        await SendAsync(h, input, bytePerWrite);
        h.Disconnect();
        Assert.Equal(["250 2.1.0 Ok", "250 2.1.5 Ok", $"250 2.0.0 {chunk.Length} octets received", RefusalFor(fakeEnd), "250 2.0.0 Ok"], await h.ReadToEndAsync());
        Assert.Empty(h.Stored);
        Assert.Equal(0, h.Store.MessageCount);
    }

    private static async Task SendAsync(SessionHarness h, byte[] input, bool bytePerWrite)
    {
        if (bytePerWrite) await h.SendInPiecesAsync(input, Enumerable.Repeat(1, input.Length));
        else await h.SendAsync(input);
    }

    // ---- overlong lines (RFC 5321 §4.5.3.1.4, §4.5.3.1.6) ------------------------------------

    [Fact]
    public async Task A_multi_megabyte_command_line_gets_one_500_and_is_never_held_in_memory()
    {
        await using var h = await SessionHarness.StartEhloAsync(writeByWrite: true);
        var filler = Encoding.ASCII.GetBytes(new string('A', Block));
        await h.SendAsync("MAIL FROM:<");
        for (var i = 0; i < 64; i++) // 4 MiB, no line end
        {
            await h.SendAsync(filler);
            await h.WhenIdleAsync();
        }
        await h.SendAsync(">\r\nNOOP\r\n");
        await h.WhenIdleAsync();
        Assert.Equal(TooLongCommand, await h.ReadLineAsync());
        Assert.Equal("250 2.0.0 Ok", await h.ReadLineAsync());
        // The session dropped each block as it came instead of waiting for the line end.
        Assert.True(h.PeakUnconsumedInput <= Block + 512, $"the session held {h.PeakUnconsumedInput} octets of one command line");
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
    }

    [Fact]
    public async Task A_multi_megabyte_data_line_is_refused_550_and_never_buffered()
    {
        await using var h = await SessionHarness.StartEhloAsync(writeByWrite: true);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        await h.SendAsync("Subject: long\r\n\r\n");
        var filler = Encoding.ASCII.GetBytes(new string('a', Block));
        var peakContent = 0;
        for (var i = 0; i < 64; i++) // one 4 MiB line
        {
            await h.SendAsync(filler);
            await h.WhenIdleAsync();
            peakContent = Math.Max(peakContent, h.ContentBufferCapacity);
        }
        Assert.True(peakContent <= 2 * Block, $"the message buffer grew to {peakContent} octets for a refused line");
        Assert.True(h.PeakUnconsumedInput <= Block + 1024, $"the session held {h.PeakUnconsumedInput} octets of one data line");
        // The line's end and the end of data are still recognised after it.
        await h.SendAsync("\r\n.\r\nNOOP\r\n");
        Assert.Equal("550 5.6.0 Message has a line longer than 998 octets (RFC 5321 §4.5.3.1.6)", await h.ReadLineAsync());
        Assert.Equal("250 2.0.0 Ok", await h.ReadLineAsync());
        Assert.Empty(h.Stored);
    }

    // ---- NUL, CR and bytes that are not UTF-8 ------------------------------------------------

    [Theory]
    [InlineData(new byte[] { (byte)'N', (byte)'O', (byte)'O', (byte)'P', 0 }, BadCommandByte)]
    [InlineData(new byte[] { 0, (byte)'Q', (byte)'U', (byte)'I', (byte)'T' }, BadCommandByte)]
    [InlineData(new byte[] { (byte)'Q', (byte)'U', (byte)'I', (byte)'T', (byte)'\r', (byte)' ' }, BadCommandByte)]
    [InlineData(new byte[] { (byte)'N', (byte)'O', (byte)'O', (byte)'P', (byte)' ', 0xFF }, NotUtf8)]
    [InlineData(new byte[] { (byte)'N', (byte)'O', (byte)'O', (byte)'P', (byte)' ', 0xC0, 0xAF }, NotUtf8)]          // overlong "/"
    [InlineData(new byte[] { (byte)'N', (byte)'O', (byte)'O', (byte)'P', (byte)' ', 0xED, 0xA0, 0x80 }, NotUtf8)]    // a surrogate
    [InlineData(new byte[] { (byte)'N', (byte)'O', (byte)'O', (byte)'P', (byte)' ', 0xE2, 0x82 }, NotUtf8)]          // cut short
    [InlineData(new byte[] { (byte)'Q', (byte)'U', (byte)'I', (byte)'T', 0xC3 }, NotUtf8)]
    public async Task A_command_with_NUL_bare_CR_or_invalid_UTF8_is_500_and_not_executed(byte[] line, string expected)
    {
        await using var h = await SessionHarness.StartEhloAsync();
        await h.SendAsync([.. line, (byte)'\r', (byte)'\n']);
        Assert.Equal(expected, Assert.Single(await h.ReadReplyAsync()));
        // Not taken as QUIT (or anything else): the session is still there.
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync("NOOP"));
    }

    [Fact]
    public async Task NUL_in_the_data_is_refused_550_and_nothing_is_stored()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        await h.SendAsync("Subject: nul\r\n\r\nbefore\0after\r\n.\r\n");
        Assert.Equal("550 5.6.0 Message contains NUL characters", Assert.Single(await h.ReadReplyAsync()));
        Assert.Empty(h.Stored);
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync("NOOP"));
    }

    [Theory]
    [InlineData("MAIL FROM:<jörg@example.org>")]
    [InlineData("MAIL FROM:<joerg@bücher.example>")]
    [InlineData("MAIL FROM:<a@b.test>", "RCPT TO:<δοκιμή@localhost>")]
    [InlineData("MAIL FROM:<a@b.test> BODY=8BITMIME", "RCPT TO:<user@bücher.example>")]
    public async Task A_non_ascii_address_without_SMTPUTF8_is_553_5_6_7(params string[] commands)
    {
        // RFC 6531 §3.3: UTF-8 in an address only after the SMTPUTF8 MAIL parameter.
        await using var h = await SessionHarness.StartEhloAsync();
        for (var i = 0; i < commands.Length - 1; i++) Assert.StartsWith("250 ", await h.CommandLineAsync(commands[i]));
        Assert.Equal("553 5.6.7 Non-ASCII address requires SMTPUTF8 (RFC 6531)", await h.CommandLineAsync(commands[^1]));
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync("NOOP"));
        Assert.Empty(h.Stored);
    }

    // ---- floods ------------------------------------------------------------------------------

    [Fact]
    public async Task A_million_pipelined_recipients_get_1000_accepted_then_452_then_421_and_memory_stays_bounded()
    {
        // Postfix's behaviour: MaxRecipients (1000) taken, 1000 more refused 452 without counting, then
        // each further one is an error until the error limit hangs up (RFC 5321 §4.5.3.1.8, §3.8).
        const int total = 1_000_001;
        await using var h = await SessionHarness.StartEhloAsync(o => (o.Smtp.MaxRecipients, o.Smtp.MaxErrors) = (1000, 10), writeByWrite: true);
        Assert.True(h.TrySend("MAIL FROM:<flood@example.org>\r\n"u8));
        const int blockSize = 16 * 1024;
        var block = new ArrayBufferWriter<byte>(blockSize);
        var sent = 0;
        var peakRecipients = 0;
        while (sent < total)
        {
            // Streamed: one block of lines at a time, generated only when the session has taken the last.
            block.ResetWrittenCount();
            while (sent < total && block.WrittenCount < blockSize - 64)
            {
                var n = Encoding.ASCII.GetBytes($"RCPT TO:<r{sent}@localhost>\r\n", block.GetSpan(64));
                block.Advance(n);
                sent++;
            }
            if (!h.TrySend(block.WrittenSpan)) break;
            await h.WhenIdleAsync();
            peakRecipients = Math.Max(peakRecipients, h.SessionField<List<string>>("_recipients").Count);
        }
        var replies = await h.ReadToEndAsync(); // also waits for RunAsync to finish
        Assert.True(h.Run.IsCompletedSuccessfully);
        Assert.Equal("250 2.1.0 Ok", replies[0]);
        Assert.Equal(Enumerable.Repeat("250 2.1.5 Ok", 1000), replies.Skip(1).Take(1000));
        Assert.Equal(Enumerable.Repeat("452 4.5.3 Error: too many recipients", 1000 + 10), replies.Skip(1001).Take(1010));
        Assert.Equal("421 4.7.0 localhost Error: too many errors", replies[^1]);
        Assert.Equal(1 + 1000 + 1010 + 1, replies.Count);
        // The session hung up long before the million; it never held more than the limit or one block.
        Assert.True(sent < 20_000, $"the client got to send {sent} recipients");
        Assert.Equal(1000, peakRecipients);
        Assert.True(h.PeakUnconsumedInput <= blockSize + 512, $"the session held {h.PeakUnconsumedInput} octets of input");
        Assert.True(h.SessionField<List<string>>("_recipients").Capacity <= 1024);
        Assert.Empty(h.Stored);
    }

    // ---- size limits (RFC 1870, RFC 3030) ----------------------------------------------------

    [Theory]
    [InlineData("SIZE=52428801", "552 5.3.4 Message size exceeds fixed limit of 52428800 bytes")]
    [InlineData("SIZE=9223372036854775807", "552 5.3.4 Message size exceeds fixed limit of 52428800 bytes")]
    [InlineData("SIZE=99999999999999999999", "501 5.5.4 Bad SIZE parameter")]
    [InlineData("SIZE=+5", "501 5.5.4 Bad SIZE parameter")]
    [InlineData("SIZE=", "501 5.5.4 Bad SIZE parameter")]
    [InlineData("SIZE", "501 5.5.4 Bad SIZE parameter")]
    [InlineData("SIZE=1 SIZE=1", "501 5.5.4 Repeated MAIL parameter SIZE")]
    public async Task A_declared_size_over_the_limit_or_unparseable_is_refused_at_MAIL(string parameter, string expected)
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal(expected, await h.CommandLineAsync($"MAIL FROM:<a@b.test> {parameter}"));
        Assert.Equal("503 5.5.1 Error: need MAIL command", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test> SIZE=52428800"));
    }

    [Fact]
    public async Task BDAT_chunks_past_the_size_limit_get_552_on_the_chunk_that_overflows_then_503_until_RSET()
    {
        await using var h = await SessionHarness.StartEhloAsync(o => o.Smtp.MaxMessageBytes = 2000, writeByWrite: true);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("250 2.0.0 1000 octets received", await ChunkAsync(h, "BDAT 1000", Lines(1000, 'a')));
        // 4 MB claimed and sent in blocks: read and dropped, never kept.
        const int huge = 4 << 20;
        await h.SendAsync($"BDAT {huge}\r\n");
        for (var i = 0; i < huge / Block; i++)
        {
            await h.SendAsync(Encoding.ASCII.GetBytes(Lines(Block, 'b')));
            await h.WhenIdleAsync();
            Assert.True(h.ContentBufferCapacity <= 16 * 1024, $"the message buffer grew to {h.ContentBufferCapacity} octets");
        }
        Assert.Equal("552 5.3.4 Message size exceeds fixed limit of 2000 bytes", Assert.Single(await h.ReadReplyAsync()));
        // Later chunks are read (to stay in step) and refused, the LAST one too.
        Assert.Equal("503 5.5.1 Error: this BDAT transaction has failed; send RSET", await ChunkAsync(h, "BDAT 5", "abcde"));
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync("RSET"));
        Assert.Equal("503 5.5.1 Error: need MAIL command", await ChunkAsync(h, "BDAT 3 LAST", "xyz"));
        Assert.Empty(h.Stored);
        // A new transaction goes through.
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await ChunkAsync(h, "BDAT 4 LAST", "ok\r\n"));
        Assert.EndsWith("+0000\r\nok\r\n", await h.ReadBodyTextAsync(Assert.Single(h.Stored)), StringComparison.Ordinal);
    }

    /// <summary>Sends a BDAT command and its chunk; returns the one-line reply.</summary>
    private static async Task<string> ChunkAsync(SessionHarness h, string command, string chunk)
    {
        await h.SendAsync(command + "\r\n" + chunk);
        return Assert.Single(await h.ReadReplyAsync());
    }

    /// <summary>CRLF-ended lines of <paramref name="c"/>, exactly <paramref name="octets"/> long in all.</summary>
    private static string Lines(int octets, char c)
    {
        var sb = new StringBuilder(octets);
        while (octets - sb.Length > 100) sb.Append(c, 98).Append("\r\n");
        return sb.Append(c, octets - sb.Length - 2).Append("\r\n").ToString();
    }

    [Fact]
    public async Task A_nearly_full_spool_turns_MAIL_away_with_452_4_3_1_and_that_is_not_an_error()
    {
        // Postfix's queue_minfree: 1 PB free is never there, so every MAIL is deferred (RFC 3463 4.3.1).
        await using var h = await SessionHarness.StartEhloAsync(o => o.Queue.MinFreeBytes = new ByteSize(1L << 50));
        for (var i = 0; i < 12; i++)
            Assert.Equal("452 4.3.1 Insufficient system storage", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("503 5.5.1 Error: need MAIL command", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync("NOOP"));
        Assert.Empty(h.Stored);
    }

    // ---- mail loops (RFC 5321 §6.3) ------------------------------------------------------------

    [Theory]
    [InlineData(100, false, false)]
    [InlineData(101, false, false)]
    [InlineData(100, true, false)]
    [InlineData(101, true, false)]
    [InlineData(100, false, true)]
    [InlineData(101, false, true)]
    public async Task A_message_with_more_than_100_Received_headers_is_554_5_4_6(int hops, bool bytePerWrite, bool bdat)
    {
        await using var h = await SessionHarness.StartEhloAsync(writeByWrite: true);
        var sb = new StringBuilder();
        for (var i = 0; i < hops; i++)
            sb.Append(i % 2 == 0 ? "Received: " : "RECEIVED: ").Append($"from hop{i}.test\r\n\tby hop{i + 1}.test; Tue, 4 Mar 2025 05:06:07 +0000\r\n");
        // Received lines in the body are text, not hops.
        sb.Append("Subject: loop\r\n\r\n").Append(string.Concat(Enumerable.Repeat("Received: quoted in the body\r\n", 50)));
        var message = Encoding.UTF8.GetBytes(sb.ToString());
        var input = bdat
            ? [.. Encoding.UTF8.GetBytes($"MAIL FROM:<a@b.test>\r\nRCPT TO:<user@localhost>\r\nBDAT {message.Length} LAST\r\n"), .. message]
            : Encoding.UTF8.GetBytes("MAIL FROM:<a@b.test>\r\nRCPT TO:<user@localhost>\r\nDATA\r\n").Concat(message).Concat(".\r\n"u8.ToArray()).ToArray();
        await SendAsync(h, input, bytePerWrite);
        await h.SendAsync("NOOP\r\n");
        h.Disconnect();
        var replies = await h.ReadToEndAsync();
        Assert.Equal(["250 2.1.0 Ok", "250 2.1.5 Ok"], replies.Take(2));
        Assert.Equal("250 2.0.0 Ok", replies[^1]);
        if (hops > 100)
        {
            Assert.Equal("554 5.4.6 Too many hops: more than 100 Received headers (mail loop)", replies[^2]);
            Assert.Empty(h.Stored);
        }
        else
        {
            Assert.StartsWith("250 2.0.0 Ok: queued as ", replies[^2]);
            var body = await h.ReadBodyAsync(Assert.Single(h.Stored));
            Assert.Equal(message, body[^message.Length..]);
        }
    }

    // ---- nothing forged reaches the envelope or the trace header -----------------------------

    [Fact]
    public async Task CR_LF_and_NUL_never_reach_the_envelope_or_the_trace_header()
    {
        await using var h = await SessionHarness.StartGreetedAsync(o => o.Smtp.MaxErrors = 100);
        async Task Expect(string expected, string command)
        {
            await h.SendAsync(command + "\r\n");
            Assert.Equal(expected, Assert.Single(await h.ReadReplyAsync()));
        }
        await Expect(BadCommandByte, "EHLO evil.test\rReceived: forged");
        await Expect(BadCommandByte, "HELO evil.test\0");
        await Expect("501 5.5.4 Syntax: HELO hostname", "HELO evil.test\tReceived:");
        await Expect("501 5.5.4 Syntax: HELO hostname", "HELO évil.test");
        Assert.Equal("250 ENHANCEDSTATUSCODES", (await h.CommandAsync("EHLO client.test"))[^1]);
        await Expect(BadCommandByte, "MAIL FROM:<a\rb@b.test>");
        // A bare LF ends the command line: what follows it is a (bad) command of its own.
        await h.SendAsync("MAIL FROM:<a\nb@b.test>\r\n");
        Assert.Equal("501 5.5.4 Syntax: MAIL FROM:<address>", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("502 5.5.2 Error: command not recognized", Assert.Single(await h.ReadReplyAsync()));
        // xtext (RFC 3461 §4) can spell any octet: decoded CR, LF, NUL or DEL are refused.
        await Expect("501 5.5.4 Bad ENVID parameter", "MAIL FROM:<a@b.test> ENVID=x+0D+0AReceived:+20forged");
        await Expect("501 5.5.4 Bad ENVID parameter", "MAIL FROM:<a@b.test> ENVID=x+00y");
        await Expect("501 5.5.4 Bad ENVID parameter", "MAIL FROM:<a@b.test> ENVID=x+7Fy");
        await Expect("501 5.5.4 Bad ENVID parameter", "MAIL FROM:<a@b.test> ENVID=x+0Ay");
        // AUTH= (RFC 4954 §5) is taken and dropped: the session's own AUTH identity is what counts.
        await Expect("250 2.1.0 Ok", "MAIL FROM:<a@b.test> ENVID=clean AUTH=forged+0D+0AReceived:+20x");
        await Expect(BadCommandByte, "RCPT TO:<u\0@localhost>");
        await Expect("501 5.5.4 Bad ORCPT parameter", "RCPT TO:<user@localhost> ORCPT=rfc822;a+0D+0Ab@x.test");
        await Expect("501 5.5.4 Bad ORCPT parameter", "RCPT TO:<user@localhost> ORCPT=rfc822;a+00b@x.test");
        await Expect("501 5.5.4 Bad ORCPT parameter", "RCPT TO:<user@localhost> ORCPT=rfc822;a+C2+85b@x.test"); // U+0085 NEL
        await Expect("501 5.5.4 Bad ORCPT parameter", "RCPT TO:<user@localhost> ORCPT=rfc+0A822;a@x.test");
        await Expect("250 2.1.5 Ok", "RCPT TO:<user@localhost> ORCPT=rfc822;ok@x.test");
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("Subject: clean\r\n\r\nx\r\n."));

        var stored = Assert.Single(h.Stored);
        var e = stored.Envelope;
        Assert.Equal("a@b.test", e.Sender);
        Assert.Equal(["user@localhost"], e.Recipients);
        Assert.Equal("clean", e.EnvelopeId);
        Assert.Null(e.AuthenticatedAs);
        Assert.Equal(new RecipientDsn(DsnNotify.Unspecified, "rfc822;ok@x.test"), e.DsnOf(0));
        Assert.All(EnvelopeStrings(e), s => Assert.DoesNotContain(s, char.IsControl));
        Assert.Equal(
            SessionHarness.ReceivedHeader("client.test", "127.0.0.1", "ESMTP", stored.Id, "user@localhost") + "Subject: clean\r\n\r\nx\r\n",
            await h.ReadBodyTextAsync(stored));
    }

    internal static IEnumerable<string> EnvelopeStrings(Envelope e) =>
        new[] { e.Sender, e.EnvelopeId, e.AuthenticatedAs }.Concat(e.Recipients)
            .Concat(Enumerable.Range(0, e.Recipients.Count).Select(i => e.DsnOf(i).OriginalRecipient))
            .OfType<string>();

    // ---- relay (RFC 5321 §3.6, §7.1) ---------------------------------------------------------

    private static readonly IPAddress Outsider = IPAddress.Parse("192.0.2.1");

    [Theory]
    [InlineData("user@remote.test", "user@remote.test")]
    [InlineData("user%remote.test@localhost", "user%remote.test@localhost")]      // percent hack
    [InlineData("remote.test!user@localhost", "remote.test!user@localhost")]      // bang path
    [InlineData("\"user@remote.test\"@localhost", "\"user@remote.test\"@localhost")] // quoted @
    [InlineData("@localhost:user@remote.test", "user@remote.test")]              // source route: only the mailbox counts
    [InlineData("@localhost,@other.test:user@remote.test", "user@remote.test")]
    [InlineData("user@[192.0.2.9]", "user@[192.0.2.9]")]                          // address literal
    [InlineData("user@[127.0.0.1]", "user@[127.0.0.1]")]
    [InlineData("user@[IPv6:2001:db8::9]", "user@[IPv6:2001:db8::9]")]
    [InlineData("user@sub.localhost", "user@sub.localhost")]
    public async Task Unauthenticated_relay_from_outside_is_554_5_7_1_in_every_shape(string path, string refused)
    {
        await using var h = await SessionHarness.StartEhloAsync(RelaySetup, Outsider);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test> SMTPUTF8"));
        Assert.Equal($"554 5.7.1 <{refused}>: Relay access denied", await h.CommandLineAsync($"RCPT TO:<{path}>"));
        Assert.Equal("554 5.5.1 Error: no valid recipients", await h.CommandLineAsync("DATA"));
        Assert.Empty(h.Stored);
    }

    [Theory]
    [InlineData("user@localhost", "user@localhost")]
    [InlineData("user@LocalHost", "user@LocalHost")]                       // a LocalDomains domain in another case
    [InlineData("user@xn--bcher-kva.example", "user@xn--bcher-kva.example")] // ... in its A-label (IDN) form
    [InlineData("user@BÜCHER.example", "user@BÜCHER.example")]             // ... as a U-label in another case
    [InlineData("user@backup.test", "user@backup.test")]                   // a RelayDomains domain
    [InlineData("user@BACKUP.test", "user@BACKUP.test")]
    [InlineData("@remote.test:user@localhost", "user@localhost")]          // a source route is ignored
    public async Task Mail_for_our_own_and_relay_domains_is_taken_from_anyone(string path, string stored)
    {
        await using var h = await SessionHarness.StartEhloAsync(RelaySetup, Outsider);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test> SMTPUTF8"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync($"RCPT TO:<{path}>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("x\r\n."));
        Assert.Equal([stored], Assert.Single(h.Stored).Recipients);
    }

    [Theory]
    [InlineData("user@remote.test")]
    [InlineData("user%remote.test@localhost")]
    [InlineData("remote.test!user@localhost")]
    [InlineData("user@[192.0.2.9]")]
    public async Task A_RelayNetworks_client_may_relay(string path)
    {
        await using var h = await SessionHarness.StartEhloAsync(o => { RelaySetup(o); o.Smtp.RelayNetworks = ["192.0.2.0/24"]; }, Outsider);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync($"RCPT TO:<{path}>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("x\r\n."));
        Assert.Equal([path], Assert.Single(h.Stored).Recipients);
    }

    [Theory]
    [InlineData("user@backup\u3002test")]                                      // ideographic full stop for the dot
    [InlineData("user@backup\uFF0Etest")]                                      // fullwidth full stop
    [InlineData("user@b\u00FCcher\uFF61example")]                              // halfwidth ideographic full stop
    [InlineData("user@\uFF4C\uFF4F\uFF43\uFF41\uFF4C\uFF48\uFF4F\uFF53\uFF54")] // fullwidth "localhost"
    [InlineData("user@\u24DBocalhost")]                                        // circled l
    [InlineData("user@local\u200Bhost")]                                       // zero-width space inside
    [InlineData("user@localhost\u00AD")]                                       // soft hyphen after
    public async Task A_look_alike_that_IDNA_maps_onto_our_domain_is_not_taken_as_ours(string path)
    {
        // Not a valid U-label (RFC 5891 §5.3-5.4; RFC 6531 §3.2 wants "." between labels): mapping
        // such names is for user input, not the protocol. Taken as ours, it is stored as sent, and
        // delivery, which sees the raw name (ChannelMap, Routes), sends it down the remote channel: relay
        // decision and routing disagree. It must be refused, as bad syntax or as relaying. (The last four
        // map onto ours only with ICU's UTS #46 mapping, off while InvariantGlobalization is on.)
        await using var h = await SessionHarness.StartEhloAsync(RelaySetup, Outsider);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test> SMTPUTF8"));
        Assert.Matches(@"^(501 5\.1\.3 |553 5\.1\.3 |554 5\.7\.1 )", await h.CommandLineAsync($"RCPT TO:<{path}>"));
        Assert.Equal("554 5.5.1 Error: no valid recipients", await h.CommandLineAsync("DATA"));
        Assert.Empty(h.Stored);
    }

    [Fact]
    public async Task A_channel_listing_a_domain_routes_mail_to_it_but_does_not_open_relaying()
    {
        await using var h = await SessionHarness.StartEhloAsync(o =>
        {
            RelaySetup(o);
            o.Channels.Add(new ChannelOptions { Name = "bulk", Transport = ChannelOptions.SmtpTransport, Domains = ["big.example"] });
        }, Outsider);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("554 5.7.1 <user@big.example>: Relay access denied", await h.CommandLineAsync("RCPT TO:<user@big.example>"));
    }

    private static void RelaySetup(SluiceOptions o)
    {
        o.Smtp.LocalDomains = ["localhost", "bücher.example"];
        o.Smtp.RelayDomains = ["backup.test"];
    }

    // ---- replies stay within RFC 5321 §4.5.3.1.5 ---------------------------------------------

    [Theory]
    [InlineData("MAIL FROM:<a@b.test> X{0}=1")]
    [InlineData("RCPT TO:<a@{0}>")]
    [InlineData("RCPT TO:<a@[{0}]>")]
    [InlineData("RCPT TO:<user@localhost> Y{0}")]
    public async Task A_reply_that_echoes_the_command_is_still_at_most_512_octets(string template)
    {
        // RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with its CRLF, whatever the client sent.
        await using var h = await SessionHarness.StartEhloAsync();
        var command = string.Format(System.Globalization.CultureInfo.InvariantCulture, template, "");
        var padding = new string('z', 510 - Encoding.UTF8.GetByteCount(command));
        command = string.Format(System.Globalization.CultureInfo.InvariantCulture, template, padding);
        Assert.Equal(510, Encoding.UTF8.GetByteCount(command)); // 512 with CRLF: the longest command line there is
        if (command.StartsWith("RCPT", StringComparison.Ordinal)) Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        var reply = await h.CommandLineAsync(command);
        Assert.Matches(@"^5\d\d 5\.\d\.\d ", reply);
        Assert.True(Encoding.UTF8.GetByteCount(reply) + 2 <= 512, $"a reply line of {Encoding.UTF8.GetByteCount(reply) + 2} octets: {reply[..60]}...");
    }

    [Theory]
    [InlineData("MAIL FROM:<a@b.test> X\u001b[2J\u001b]0;owned\u0007=1")]
    [InlineData("MAIL FROM:<a@b.test> Y\u0085\u009b31m")]
    public async Task A_reply_never_echoes_control_characters_from_the_command(string command)
    {
        // The line reader lets any valid UTF-8 but CR and NUL through; what a reply quotes back must not
        // carry terminal escapes or C1 controls to whoever reads it (Postfix prints them as "?").
        await using var h = await SessionHarness.StartEhloAsync();
        var reply = await h.CommandLineAsync(command);
        Assert.StartsWith("555 5.5.4 Unsupported MAIL parameter ", reply);
        Assert.DoesNotContain(reply, char.IsControl);
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync("NOOP"));
    }
}
