// Property tests (CsCheck): random command streams, cut into random writes, never fault a session, get
// well-formed replies (RFC 5321 §4.2, RFC 2034) whatever the split, and store nothing with CR, LF or NUL.
// SLUICE_FUZZ_ITERATIONS=N or SLUICE_FUZZ_SECONDS=S run longer; SLUICE_FUZZ_SEED=... replays a failure.
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using CsCheck;
using Xunit.Abstractions;
using Sluice.Core.Mail;

namespace Sluice.Receive.Tests;

public sealed partial class CommandParserPropertyTests(ITestOutputHelper output)
{
    // ---- how long to run --------------------------------------------------------------------

    private static long Iterations(long ci) =>
        long.TryParse(Environment.GetEnvironmentVariable("SLUICE_FUZZ_ITERATIONS"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : ci;

    private static int Seconds =>
        int.TryParse(Environment.GetEnvironmentVariable("SLUICE_FUZZ_SECONDS"), NumberStyles.None, CultureInfo.InvariantCulture, out var s) && s > 0 ? s : -1;

    private static string? Seed => Environment.GetEnvironmentVariable("SLUICE_FUZZ_SEED") is { Length: > 0 } s ? s : null;

    // ---- generators -------------------------------------------------------------------------

    private static readonly Gen<byte> NastyByte = Gen.OneOf(
        (byte)'<', (byte)'>', (byte)'@', (byte)'=', (byte)' ', (byte)':', (byte)'\r', (byte)'\n', (byte)0, (byte)'.',
        (byte)'+', (byte)'%', (byte)'!', (byte)'"', (byte)'[', (byte)']', (byte)',', (byte)';', (byte)'\t', (byte)0x7F,
        (byte)0x80, (byte)0xC3, (byte)0xA9, (byte)0xFF, (byte)0xED, (byte)0xF0);

    private static readonly Gen<byte> AnyByte = Gen.Frequency((4, Gen.Byte[0x21, 0x7E]), (3, NastyByte), (1, Gen.Byte));

    private static readonly Gen<string> LineEnd = Gen.Frequency((12, "\r\n"), (2, "\n"), (1, "\r"), (1, ""), (1, "\r\r\n"), (1, "\n\r"));

    private static readonly Gen<string> Verb = Gen.Frequency(
        (6, "MAIL"), (6, "RCPT"), (3, "EHLO"), (2, "HELO"), (3, "DATA"), (3, "BDAT"), (2, "RSET"), (2, "NOOP"),
        (1, "VRFY"), (1, "HELP"), (1, "STARTTLS"), (1, "AUTH"), (1, "EXPN"), (1, "QUIT"), (1, "mail"), (1, "Rcpt"),
        (1, "FROB"), (1, ""));

    private static readonly Gen<string> Address = Gen.OneOf(
        "a@b.test", "user@localhost", "USER@LOCALHOST", "", "postmaster", "Postmaster", "jörg@bücher.example",
        "x%y@localhost", "r.test!u@localhost", "@r.test:u@localhost", "@a,@b:u@localhost", "u@[192.0.2.1]",
        "u@[IPv6:2001:db8::1]", "\"q@x\"@localhost", "\"a b\"@localhost", "u@remote.test", "u@xn--bcher-kva.example",
        "u@", "@localhost", "u@@localhost", "u@-bad-.test", "u@[999.1.1.1]", "δοκιμή@localhost", "u@localhost.",
        "\"../../etc\"@localhost", "\"a/../b\"@localhost", "\"a>b\"@localhost", "\"a\\\"b\"@localhost", "\"\"@localhost", "\"ab\"@localhost",
        "\"a\\\\b\"@localhost", "\"..\"@localhost", "a..b@localhost", ".a@localhost", "\"a\"b\"@localhost");

    private static readonly Gen<string> Parameter = Gen.OneOf(
        "SIZE=100", "SIZE=52428801", "SIZE=99999999999999999999", "SIZE=", "SIZE", "BODY=8BITMIME", "BODY=7BIT",
        "BODY=BINARYMIME", "SMTPUTF8", "SMTPUTF8=1", "RET=HDRS", "RET=FULL", "RET=x", "ENVID=a+2Bb", "ENVID=x+0D+0Ay",
        "ENVID=+00", "ENVID=+C3+A9", "NOTIFY=SUCCESS,FAILURE", "NOTIFY=NEVER", "NOTIFY=never,delay", "NOTIFY=",
        "ORCPT=rfc822;a+2Bb@c", "ORCPT=rfc822;a+00b", "ORCPT=rfc822;+0D+0A", "ORCPT=;x", "ORCPT=rfc822;+C2+85",
        "AUTH=<>", "AUTH=a+0Ab", "X=1", "=", "==", "LAST");

    /// <summary>A token that is mostly well formed: an address in brackets with parameters, or junk.</summary>
    private static readonly Gen<string> Argument = Gen.Frequency(
        (5, Gen.Select(Gen.OneOf("FROM:", "TO:", "from:", "To:", "FROM: ", ""), Address, Parameter.Array[0, 3],
            (k, a, p) => $"{k}<{a}>" + string.Concat(p.Select(x => " " + x)))),
        (2, Gen.OneOf("client.test", "0", "5", "17 LAST", "3 last", "0 LAST", "99999999999999999999", "-1", "PLAIN", "PLAIN AGFhAGI=", "")),
        (2, AnyByte.Array[0, 24].Select(b => Encoding.Latin1.GetString(b))));

    /// <summary>One piece of the client's stream, as bytes.</summary>
    private static readonly Gen<byte[]> Piece = Gen.Frequency(
        // A command line, its bytes maybe disturbed by a nasty one.
        (10, Gen.Select(Verb, Argument, LineEnd, (v, a, end) => Encoding.UTF8.GetBytes(a.Length == 0 ? v + end : $"{v} {a}{end}"))),
        (3, Gen.Select(Verb, Argument, LineEnd, Gen.Int[0, 40], NastyByte, (v, a, end, at, b) =>
        {
            var bytes = Encoding.UTF8.GetBytes($"{v} {a}");
            at = Math.Min(at, bytes.Length);
            return (byte[])[.. bytes[..at], b, .. bytes[at..], .. Encoding.ASCII.GetBytes(end)];
        })),
        // A message for DATA: text lines, maybe a fake or missing end.
        (3, Gen.Select(AnyByte.Array[0, 30].Array[0, 6], LineEnd, Gen.OneOf(".\r\n", "\n.\n", "\r\n.\n", ".\n", "", "..\r\n.\r\n"),
            (lines, end, last) => Encoding.ASCII.GetBytes("DATA\r\n").Concat(lines.SelectMany(l => l.Concat(Encoding.ASCII.GetBytes(end)))).Concat(Encoding.ASCII.GetBytes(last)).ToArray())),
        // A clean message, so that transactions do complete.
        (2, Gen.Byte[0x20, 0x7E].Array[0, 30].Array[0, 6].Select(lines =>
            Encoding.ASCII.GetBytes("DATA\r\n").Concat(lines.SelectMany(l => l.Concat("\r\n"u8.ToArray()))).Concat(".\r\n"u8.ToArray()).ToArray())),
        // BDAT with exactly its chunk, or a size that lies.
        (3, Gen.Select(AnyByte.Array[0, 40], Gen.Bool, Gen.Int[-2, 2], (chunk, last, lie) =>
            Encoding.ASCII.GetBytes($"BDAT {Math.Max(0, chunk.Length + (lie == 2 ? 1 : 0))}{(last ? " LAST" : "")}\r\n").Concat(chunk).ToArray())),
        // Raw junk and very long tokens.
        (2, AnyByte.Array[0, 64]),
        (1, Gen.Select(Gen.Int[300, 3000], Gen.OneOf("A", "<", "@", " ", "é", "\0"), LineEnd, (n, c, end) => Encoding.UTF8.GetBytes("NOOP " + string.Concat(Enumerable.Repeat(c, n)) + end))));

    private static readonly Gen<byte[]> ClientStream = Gen.Select(Gen.Frequency((3, true), (1, false)), Piece.Array[1, 24], (greet, pieces) =>
        (greet ? "EHLO fuzz.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<user@localhost>\r\n"u8.ToArray() : []).Concat(pieces.SelectMany(p => p)).ToArray());

    /// <summary>Write sizes, used in turn until the input is all sent; 1s make it a byte at a time.</summary>
    private static readonly Gen<int[]> Splits = Gen.Frequency((3, Gen.Int[1, 64].Array[1, 16]), (1, Gen.Const(new[] { 1 })), (1, Gen.Int[1, 3].Array[1, 4]));

    // ---- properties -------------------------------------------------------------------------

    [GeneratedRegex(@"^(\d)\d\d[ -](\d)\.\d{1,3}\.\d{1,3} ")]
    private static partial Regex EnhancedReply();

    /// <summary>The replies that carry no enhanced status code (RFC 2034 §3 leaves out 220, the EHLO lines, 354 and the like).</summary>
    private static readonly HashSet<string> PlainReplies =
    [
        "220 localhost ESMTP Sluice", "250 localhost", "250-localhost", "250-PIPELINING", "250-SIZE 52428800", "250-8BITMIME",
        "250-SMTPUTF8", "250-DSN", "250-CHUNKING", "250 ENHANCEDSTATUSCODES", "354 End data with <CR><LF>.<CR><LF>",
    ];

    // A quoted local part may hold '<' or '>' (RFC 5322 §3.2.4): the "for" address is an angle-addr all the same.
    [GeneratedRegex(@"^Received: from [!-~]+ \(\[127\.0\.0\.1\]\)\r\n\tby localhost \(Sluice\) with (SMTP|ESMTP|UTF8SMTP) id 1\.\d+(\r\n\tfor <([^\r\n\0<>""]|""([^\r\n\0""\\]|\\[ -~])*"")+>)?;\r\n\tTue, 04 Mar 2025 05:06:07 \+0000\r\n")]
    private static partial Regex TraceHeader();

    [Fact]
    public async Task Random_command_streams_never_fault_and_replies_are_well_formed_and_independent_of_the_split()
    {
        var stats = new Coverage();
        // Half the sessions get a high error limit, so that long streams are not all cut short by 421.
        await Gen.Select(ClientStream, Splits, Gen.OneOf(10, 1000)).SampleAsync(
            async (input, splits, maxErrors) =>
            {
                var whole = await RunAsync(input, [input.Length], maxErrors);
                var split = await RunAsync(input, splits, maxErrors);
                Assert.Equal(whole.Replies, split.Replies);
                Assert.Equal(whole.Stored, split.Stored);
                stats.Add(whole);
            },
            writeLine: output.WriteLine, seed: Seed, iter: Iterations(300), time: Seconds,
            print: t => $"input \"{TranscriptTests.Escape(Encoding.Latin1.GetString(t.Item1))}\" in writes of [{string.Join(",", t.Item2)}], MaxErrors {t.Item3}");

        // The generator must reach deep states, or the properties above say little.
        output.WriteLine(stats.ToString());
        Assert.True(stats.Messages > 0, "no random stream got a message stored");
        Assert.True(stats.Codes.ContainsKey("354") && stats.Codes.ContainsKey("550") && stats.Codes.ContainsKey("421"), stats.ToString());
    }

    /// <summary>What the runs reached: reply codes seen and messages stored.</summary>
    private sealed class Coverage
    {
        private readonly Lock _lock = new();
        public Dictionary<string, int> Codes { get; } = [];
        public int Messages { get; private set; }
        public int Runs { get; private set; }

        public void Add(Outcome o)
        {
            lock (_lock)
            {
                Runs++;
                Messages += o.Stored.Count(l => l.StartsWith("B: ", StringComparison.Ordinal));
                foreach (var r in o.Replies) Codes[r[..3]] = Codes.GetValueOrDefault(r[..3]) + 1;
            }
        }

        public override string ToString()
        {
            lock (_lock)
                return $"{Runs} streams, {Messages} messages stored; replies: {string.Join(" ", Codes.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key}×{c.Value}"))}";
        }
    }

    [Fact]
    public void Random_argument_strings_never_throw_in_the_path_parser_and_a_valid_mailbox_is_clean()
    {
        var text = Gen.Frequency(
            (3, Gen.Select(Gen.OneOf("FROM:", "TO:", "from:"), Address, Parameter.Array[0, 3], (k, a, p) => $"{k}<{a}> " + string.Join(' ', p))),
            (2, Gen.Char.Array[0, 80].Select(c => new string(c))),
            (2, AnyByte.Array[0, 80].Select(b => Encoding.UTF8.GetString(b))));
        text.Sample(arg =>
        {
            foreach (var keyword in (string[])["FROM:", "TO:"])
            {
                if (!SmtpSession.TryParsePath(arg, keyword, out var address, out var parameters, out var problem))
                {
                    Assert.Matches(@"^501 5\.5\.4 Syntax: ", problem);
                    continue;
                }
                Assert.All(parameters, p => Assert.Equal(p.Key.ToUpperInvariant(), p.Key));
                foreach (var utf8 in (bool[])[false, true])
                {
                    if (!SmtpSession.IsValidMailbox(address, utf8, out var canonical, out problem)) continue;
                    Assert.DoesNotContain(canonical, char.IsControl);
                    Assert.True(utf8 || canonical.All(char.IsAscii), canonical);
                    // The canonical form is valid and its own canonical form; spaces and brackets only inside quotes.
                    Assert.True(SmtpSession.IsValidMailbox(canonical, utf8, out var again, out _), canonical);
                    Assert.Equal(canonical, again);
                    var local = Core.Mail.Address.LocalPartOf(canonical);
                    Assert.True(local.StartsWith('"') || !local.Any(c => c is ' ' or '<' or '>' or '"'), canonical);
                    // Whatever it says, its Maildir name is one safe path component.
                    if (Sluice.Core.Mailboxes.MailboxMap.MaildirName(Core.Mail.LocalPart.Content(local).ToLowerInvariant()) is { } name)
                        Assert.False(name.StartsWith('.') || name.Contains("..", StringComparison.Ordinal) || name.IndexOfAny(['/', '\\', '"', '\0']) >= 0, name);
                }
            }
        }, writeLine: output.WriteLine, seed: Seed, iter: Iterations(500) * 10, time: Seconds);
    }

    private sealed record Outcome(List<string> Replies, List<string> Stored);

    /// <summary>Runs one session over <paramref name="input"/>, cut into writes of <paramref name="splits"/> sizes in turn; checks every per-run property.</summary>
    private static async Task<Outcome> RunAsync(byte[] input, int[] splits, int maxErrors)
    {
        await using var h = SessionHarness.Start(o => o.Smtp.MaxErrors = maxErrors, writeByWrite: true);
        for (int at = 0, i = 0; at < input.Length; i++)
        {
            var n = Math.Min(Math.Max(1, splits[i % splits.Length]), input.Length - at);
            if (!h.TrySend(input.AsSpan(at, n))) break; // the session hung up (QUIT, 421)
            at += n;
        }
        h.Disconnect();
        var replies = await h.ReadToEndAsync(); // throws if RunAsync faulted
        Assert.True(h.Run.IsCompletedSuccessfully);

        for (var i = 0; i < replies.Count; i++)
        {
            var line = replies[i];
            Assert.DoesNotContain(line, c => c is '\r' or '\n' or '\0');
            if (PlainReplies.Contains(line)) continue;
            var m = EnhancedReply().Match(line);
            Assert.True(m.Success, $"reply line without an enhanced status code: \"{TranscriptTests.Escape(line)}\"");
            // RFC 3463 §2: the class of the enhanced code is the first digit of the reply code.
            Assert.Equal(m.Groups[1].Value, m.Groups[2].Value);
            // Nothing follows a goodbye.
            if (line.StartsWith("221 ", StringComparison.Ordinal) || line.StartsWith("421 ", StringComparison.Ordinal))
                Assert.Equal(replies.Count - 1, i);
        }
        Assert.Equal("220 localhost ESMTP Sluice", replies.FirstOrDefault());

        var stored = new List<string>();
        foreach (var message in h.Stored)
        {
            var e = message.Envelope;
            Assert.All(HostileInputTests.EnvelopeStrings(e), s => Assert.DoesNotContain(s, c => char.IsControl(c)));
            Assert.NotEmpty(e.Recipients);
            var body = await h.ReadBodyAsync(message);
            var text = Encoding.Latin1.GetString(body);
            Assert.True(TraceHeader().IsMatch(text), $"trace header: \"{TranscriptTests.Escape(text[..Math.Min(300, text.Length)])}\"");
            // Only CRLF line ends and no NUL got through (RFC 5321 §2.3.8).
            Assert.DoesNotContain('\0', text);
            Assert.False(Regex.IsMatch(text, "\r(?!\n)|(?<!\r)\n"), $"bare CR or LF in \"{TranscriptTests.Escape(text)}\"");
            stored.AddRange(TranscriptTests.DescribeEnvelope(e));
            stored.Add("B: " + TranscriptTests.Escape(text.Replace($" id {message.Id}", " id *", StringComparison.Ordinal)));
        }
        // The queue id (in the reply and the trace header) differs from run to run; everything else must not.
        return new Outcome([.. replies.Select(r => QueuedAs().Replace(r, "queued as *"))], stored);
    }

    [GeneratedRegex(@"queued as \S+")]
    private static partial Regex QueuedAs();
}
