// Recorded SMTP conversations (Transcripts/*.txt) replayed against a session one byte per write, one
// line per write in lockstep, and as one block: RFC 5321 §3.3, RFC 2920, RFC 3030, RFC 3461, RFC 6531.
using System.Text;
using System.Text.RegularExpressions;
using Sluice.Core.Mail;
using Sluice.Queue;
using Sluice.Queue.Spool;

namespace Sluice.Receive.Tests;

public sealed class TranscriptTests
{
    public enum Fragmentation
    {
        /// <summary>Every byte of the client side is a write (and so a read) of its own.</summary>
        OneBytePerWrite,
        /// <summary>One line per write, each reply group read before the client goes on, as a real client would.</summary>
        OneLinePerWrite,
        /// <summary>The whole client side in one write, before a single reply is read.</summary>
        WholeBlock,
    }

    private static readonly string Directory = Path.Combine(AppContext.BaseDirectory, "Transcripts");

    public static TheoryData<string, Fragmentation> Cases()
    {
        var data = new TheoryData<string, Fragmentation>();
        foreach (var file in System.IO.Directory.GetFiles(Directory, "*.txt").Order(StringComparer.Ordinal))
            foreach (var mode in Enum.GetValues<Fragmentation>())
                data.Add(Path.GetFileNameWithoutExtension(file), mode);
        return data;
    }

    [Fact]
    public void Every_transcript_is_copied_next_to_the_tests()
    {
        var names = System.IO.Directory.GetFiles(Directory, "*.txt").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal);
        Assert.Equal(["bdat", "dsn", "errors", "pipelining", "plain-esmtp", "rset", "smtputf8", "too-many-errors"], names);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Transcript_replays_exactly(string name, Fragmentation mode)
    {
        var transcript = Transcript.Load(Path.Combine(Directory, name + ".txt"));
        await using var h = SessionHarness.Start(transcript.Configure, transcript.Remote, writeByWrite: true);

        var replies = mode == Fragmentation.OneLinePerWrite
            ? await ReplayInLockstepAsync(h, transcript)
            : await ReplayBlindAsync(h, transcript, mode);

        AssertRepliesMatch(transcript.Replies, replies);
        var stored = await DescribeStoredAsync(h);
        Assert.Equal(transcript.Stored, stored);
        // What a restart would recover from the spool is the same envelope, DSN fields and all.
        Assert.Equal(transcript.Stored.Where(l => l.StartsWith("M:", StringComparison.Ordinal)), DescribeSpooledEnvelopes(h));
    }

    /// <summary>Sends the whole client side cut up as <paramref name="mode"/> says, then reads every reply to the close.</summary>
    private static async Task<List<string>> ReplayBlindAsync(SessionHarness h, Transcript t, Fragmentation mode)
    {
        var client = t.Steps.OfType<ClientStep>().SelectMany(s => s.Bytes).ToArray();
        if (mode == Fragmentation.WholeBlock) h.TrySend(client);
        else for (var i = 0; i < client.Length && h.TrySend(client.AsSpan(i, 1)); i++) { }
        h.Disconnect();
        return await h.ReadToEndAsync();
    }

    /// <summary>One line per write; before each group of expected replies the client waits for them, as without PIPELINING.</summary>
    private static async Task<List<string>> ReplayInLockstepAsync(SessionHarness h, Transcript t)
    {
        var replies = new List<string>();
        foreach (var step in t.Steps)
        {
            switch (step)
            {
                case ClientStep c:
                    foreach (var line in SplitAfterLineFeeds(c.Bytes)) h.TrySend(line);
                    break;
                case ServerStep s:
                    var line2 = await h.ReadLineAsync();
                    Assert.True(s.Pattern.IsMatch(line2), $"reply {replies.Count + 1}: expected \"{s.Text}\", got \"{Escape(line2)}\" after [{string.Join(" | ", replies)}]");
                    replies.Add(line2);
                    break;
            }
        }
        h.Disconnect();
        replies.AddRange(await h.ReadToEndAsync());
        return replies;
    }

    private static IEnumerable<byte[]> SplitAfterLineFeeds(byte[] bytes)
    {
        var start = 0;
        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] != (byte)'\n') continue;
            yield return bytes[start..(i + 1)];
            start = i + 1;
        }
        if (start < bytes.Length) yield return bytes[start..];
    }

    private static void AssertRepliesMatch(IReadOnlyList<ServerStep> expected, IReadOnlyList<string> actual)
    {
        var shown = string.Join("\n", actual.Select(Escape));
        for (var i = 0; i < Math.Min(expected.Count, actual.Count); i++)
            Assert.True(expected[i].Pattern.IsMatch(actual[i]), $"reply {i + 1}: expected \"{expected[i].Text}\", got \"{Escape(actual[i])}\"; all replies:\n{shown}");
        Assert.True(expected.Count == actual.Count, $"expected {expected.Count} reply lines, got {actual.Count}:\n{shown}");
    }

    // ---- what was stored, in the transcript's M:/B: notation -----------------------------------

    private static async Task<List<string>> DescribeStoredAsync(SessionHarness h)
    {
        var lines = new List<string>();
        foreach (var message in h.Stored)
        {
            lines.AddRange(DescribeEnvelope(message.Envelope));
            // The trace header's id is the queue id, which changes from run to run: "{id}" in the transcript.
            var body = Encoding.UTF8.GetString(await h.ReadBodyAsync(message)).Replace($" id {message.Id}", " id {id}", StringComparison.Ordinal);
            var parts = body.Split("\r\n");
            // Every part but the last was followed by CRLF; a last part that is not empty had none.
            lines.AddRange(parts[..^1].Select(p => "B: " + p));
            if (parts[^1].Length > 0) lines.Add("B= " + parts[^1]);
        }
        return lines;
    }

    private static IEnumerable<string> DescribeSpooledEnvelopes(SessionHarness h) =>
        FileQueueStore.ReadOnly(1, h.SpoolDirectory, _ => { })
            .OrderBy(m => ulong.Parse(m.Id[(m.Id.IndexOf('.') + 1)..], System.Globalization.CultureInfo.InvariantCulture))
            .SelectMany(m => DescribeEnvelope(m.Envelope));

    /// <summary>"M: from &lt;s&gt; [ret=] [envid=] [smtputf8] [8bitmime] [auth=]", then "M: to &lt;r&gt; [notify=] [orcpt=]" per recipient.</summary>
    internal static IEnumerable<string> DescribeEnvelope(Envelope e)
    {
        var from = new StringBuilder("M: from <").Append(e.Sender).Append('>');
        if (e.Return != DsnReturn.Unspecified) from.Append(" ret=").Append(DsnParameters.Return(e.Return));
        if (e.EnvelopeId is not null) from.Append(" envid=").Append(e.EnvelopeId);
        if (e.SmtpUtf8) from.Append(" smtputf8");
        if (e.EightBitMime) from.Append(" 8bitmime");
        if (e.AuthenticatedAs is not null) from.Append(" auth=").Append(e.AuthenticatedAs);
        yield return from.ToString();
        for (var i = 0; i < e.Recipients.Count; i++)
        {
            var to = new StringBuilder("M: to <").Append(e.Recipients[i]).Append('>');
            var dsn = e.DsnOf(i);
            if (dsn.Notify != DsnNotify.Unspecified) to.Append(" notify=").Append(DsnParameters.Notify(dsn.Notify));
            if (dsn.OriginalRecipient is not null) to.Append(" orcpt=").Append(dsn.OriginalRecipient);
            yield return to.ToString();
        }
    }

    /// <summary>Shows control characters the way a transcript writes them.</summary>
    internal static string Escape(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var c in s)
        {
            sb.Append(c switch
            {
                '\r' => "\\r",
                '\n' => "\\n",
                '\t' => "\\t",
                '\0' => "\\0",
                '\\' => "\\\\",
                < ' ' or '\x7f' => $"\\x{(int)c:X2}",
                _ => c.ToString(),
            });
        }
        return sb.ToString();
    }

    // ---- the transcript format ----------------------------------------------------------------

    private abstract record Step;

    private sealed record ClientStep(byte[] Bytes) : Step;

    private sealed record ServerStep(string Text, Regex Pattern) : Step;

    /// <summary>
    /// A conversation file. Lines:
    /// <list type="bullet">
    /// <item>"# ..." a comment; blank lines are ignored.</item>
    /// <item>"@remote ADDRESS", "@local-domains A B", "@relay-domains A B", "@max-message-bytes N", "@max-recipients N": the session's setup.</item>
    /// <item>"C: text" the client sends text and CRLF; "C= text" sends text exactly, no line end added.</item>
    /// <item>"S: text" one reply line, in order; "{*}" in it stands for one or more non-space characters.</item>
    /// <item>"M: ..." one line of a stored envelope (see DescribeEnvelope); "B: text" one body line, CRLF after it; "B= text" a last body part with no CRLF;
    /// "{id}" in B text stands for the message's queue id.</item>
    /// </list>
    /// In C, S, M and B text: \r \n \t \0 \\ and \xHH (one raw octet) are escapes; the rest is UTF-8.
    /// </summary>
    private sealed class Transcript
    {
        public List<Step> Steps { get; } = [];
        public List<ServerStep> Replies { get; } = [];
        public List<string> Stored { get; } = [];
        public System.Net.IPAddress? Remote { get; private set; }
        private readonly List<Action<Sluice.Core.Configuration.SluiceOptions>> _setup = [];

        public void Configure(Sluice.Core.Configuration.SluiceOptions o)
        {
            foreach (var set in _setup) set(o);
        }

        public static Transcript Load(string path)
        {
            var t = new Transcript();
            var number = 0;
            foreach (var raw in File.ReadAllLines(path, Encoding.UTF8))
            {
                number++;
                var line = raw;
                if (line.Length == 0 || line.StartsWith('#')) continue;
                if (line.StartsWith('@'))
                {
                    t.Directive(line, $"{path}:{number}");
                    continue;
                }
                var kind = line.Length >= 2 ? line[..2] : line;
                var text = line.Length > 3 ? line[3..] : "";
                if (line.Length > 2 && line[2] != ' ') throw new FormatException($"{path}:{number}: expected a space after \"{kind}\"");
                switch (kind)
                {
                    case "C:": t.Steps.Add(new ClientStep([.. Unescape(text), (byte)'\r', (byte)'\n'])); break;
                    case "C=": t.Steps.Add(new ClientStep(Unescape(text))); break;
                    case "S:":
                        var expected = Encoding.UTF8.GetString(Unescape(text));
                        var pattern = new Regex("^" + string.Join(@"\S+", expected.Split("{*}").Select(Regex.Escape)) + "$", RegexOptions.CultureInvariant);
                        var step = new ServerStep(text, pattern);
                        t.Steps.Add(step);
                        t.Replies.Add(step);
                        break;
                    case "M:" or "B:" or "B=": t.Stored.Add(kind + " " + Encoding.UTF8.GetString(Unescape(text))); break;
                    default: throw new FormatException($"{path}:{number}: unknown line \"{raw}\"");
                }
            }
            return t;
        }

        private void Directive(string line, string where)
        {
            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var args = words[1..];
            switch (words[0])
            {
                case "@remote": Remote = System.Net.IPAddress.Parse(args.Single()); break;
                case "@local-domains": _setup.Add(o => o.Smtp.LocalDomains = [.. args]); break;
                case "@relay-domains": _setup.Add(o => o.Smtp.RelayDomains = [.. args]); break;
                case "@max-message-bytes": _setup.Add(o => o.Smtp.MaxMessageBytes = long.Parse(args.Single(), System.Globalization.CultureInfo.InvariantCulture)); break;
                case "@max-recipients": _setup.Add(o => o.Smtp.MaxRecipients = int.Parse(args.Single(), System.Globalization.CultureInfo.InvariantCulture)); break;
                default: throw new FormatException($"{where}: unknown directive {words[0]}");
            }
        }

        private static byte[] Unescape(string text)
        {
            var bytes = new List<byte>(text.Length + 2);
            for (var i = 0; i < text.Length; i++)
            {
                if (text[i] != '\\')
                {
                    // One UTF-8 character (a surrogate pair counts as one).
                    var n = char.IsHighSurrogate(text[i]) && i + 1 < text.Length ? 2 : 1;
                    bytes.AddRange(Encoding.UTF8.GetBytes(text.Substring(i, n)));
                    i += n - 1;
                    continue;
                }
                if (++i >= text.Length) throw new FormatException($"a lone backslash ends \"{text}\"");
                switch (text[i])
                {
                    case 'r': bytes.Add((byte)'\r'); break;
                    case 'n': bytes.Add((byte)'\n'); break;
                    case 't': bytes.Add((byte)'\t'); break;
                    case '0': bytes.Add(0); break;
                    case '\\': bytes.Add((byte)'\\'); break;
                    case 'x':
                        bytes.Add(Convert.FromHexString(text.AsSpan(i + 1, 2))[0]);
                        i += 2;
                        break;
                    default: throw new FormatException($"unknown escape \\{text[i]} in \"{text}\"");
                }
            }
            return [.. bytes];
        }
    }
}
