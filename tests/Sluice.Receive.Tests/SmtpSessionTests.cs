// The SMTP server session (RFC 5321) driven byte for byte over in-memory pipes, with a real spool.
using System.Buffers;
using System.Net;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;

namespace Sluice.Receive.Tests;

public sealed class SmtpSessionTests
{
    private const long DefaultMax = 52_428_800;

    // ---- greeting, EHLO, HELO -----------------------------------------------------------------

    [Fact]
    public async Task Greeting_is_220_with_the_hostname()
    {
        await using var h = SessionHarness.Start(o => o.Hostname = "mx.test");
        Assert.Equal("220 mx.test ESMTP Sluice", await h.ReadLineAsync());
    }

    [Fact]
    public async Task Ehlo_lists_pipelining_size_8bitmime_and_enhancedstatuscodes()
    {
        await using var h = await SessionHarness.StartGreetedAsync(o => o.Hostname = "mx.test");
        var reply = await h.CommandAsync("EHLO client.test");
        Assert.Equal(["250-mx.test", "250-PIPELINING", $"250-SIZE {DefaultMax}", "250-8BITMIME", "250-SMTPUTF8", "250-DSN", "250-CHUNKING", "250 ENHANCEDSTATUSCODES"], reply);
    }

    [Fact]
    public async Task Ehlo_advertises_the_configured_size_limit()
    {
        await using var h = await SessionHarness.StartGreetedAsync(o => o.Smtp.MaxMessageBytes = 2000);
        Assert.Contains("250-SIZE 2000", await h.CommandAsync("EHLO client.test"));
    }

    [Fact]
    public async Task Commands_are_case_insensitive()
    {
        await using var h = await SessionHarness.StartGreetedAsync();
        Assert.Equal("250 ENHANCEDSTATUSCODES", (await h.CommandAsync("ehlo client.test"))[^1]);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("mail from:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("rcpt to:<user@localhost>"));
    }

    [Theory]
    [InlineData("EHLO", "501 5.5.4 Syntax: EHLO hostname")]
    [InlineData("EHLO two words", "501 5.5.4 Syntax: EHLO hostname")]
    [InlineData("HELO", "501 5.5.4 Syntax: HELO hostname")]
    public async Task Hello_without_a_single_hostname_is_501(string command, string expected)
    {
        await using var h = await SessionHarness.StartGreetedAsync();
        Assert.Equal(expected, await h.CommandLineAsync(command));
        Assert.Equal("503 5.5.1 Error: send HELO/EHLO first", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
    }

    [Fact]
    public async Task Helo_replies_with_the_hostname_and_allows_a_transaction_recorded_as_smtp()
    {
        await using var h = await SessionHarness.StartGreetedAsync();
        Assert.Equal("250 localhost", await h.CommandLineAsync("HELO oldclient.test"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("Subject: hi\r\n\r\nbody\r\n."));
        var stored = Assert.Single(h.Stored);
        Assert.Equal(
            SessionHarness.ReceivedHeader("oldclient.test", "127.0.0.1", "SMTP", stored.Id, "user@localhost") + "Subject: hi\r\n\r\nbody\r\n",
            await h.ReadBodyTextAsync(stored));
    }

    // ---- a whole transaction ------------------------------------------------------------------

    [Fact]
    public async Task A_full_transaction_is_queued_with_a_trace_header_and_the_exact_message()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<sender@example.org>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        const string message = "From: sender@example.org\r\nTo: user@localhost\r\nSubject: test\r\n\r\nHello,\r\n\r\nworld.\r\n";
        await h.SendAsync(message + ".\r\n");
        var reply = Assert.Single(await h.ReadReplyAsync());

        var match = Regex.Match(reply, @"^250 2\.0\.0 Ok: queued as (\S+)$");
        Assert.True(match.Success, reply);
        var stored = Assert.Single(h.Stored);
        Assert.Equal(stored.Id, match.Groups[1].Value);
        Assert.Equal("sender@example.org", stored.Sender);
        Assert.Equal(["user@localhost"], stored.Recipients);
        Assert.Equal(1, h.Store.MessageCount);

        var body = await h.ReadBodyTextAsync(stored);
        Assert.StartsWith("Received: from client.test ([127.0.0.1])\r\n", body, StringComparison.Ordinal);
        Assert.Equal(SessionHarness.ReceivedHeader("client.test", "127.0.0.1", "ESMTP", stored.Id, "user@localhost") + message, body);

        Assert.Equal("221 2.0.0 localhost closing connection", await h.CommandLineAsync("QUIT"));
        await h.AssertClosedAsync();
    }

    [Fact]
    public async Task Several_recipients_are_kept_in_order_and_the_trace_header_names_none()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<sender@example.org>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<one@localhost>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<two@example.net>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("x\r\n."));
        var stored = Assert.Single(h.Stored);
        Assert.Equal(["one@localhost", "two@example.net"], stored.Recipients);
        Assert.Equal(SessionHarness.ReceivedHeader("client.test", "127.0.0.1", "ESMTP", stored.Id, null) + "x\r\n", await h.ReadBodyTextAsync(stored));
    }

    [Fact]
    public async Task Two_transactions_in_one_session_are_stored_separately_each_trace_header_naming_its_queue_id()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        for (var i = 1; i <= 2; i++)
        {
            Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync($"MAIL FROM:<s{i}@example.org>"));
            Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync($"RCPT TO:<r{i}@localhost>"));
            Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
            Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync($"message {i}\r\n."));
        }
        Assert.Equal(2, h.Stored.Count);
        Assert.NotEqual(h.Stored[0].Id, h.Stored[1].Id);
        Assert.Equal("s2@example.org", h.Stored[1].Sender);
        Assert.Equal(SessionHarness.ReceivedHeader("client.test", "127.0.0.1", "ESMTP", h.Stored[0].Id, "r1@localhost") + "message 1\r\n", await h.ReadBodyTextAsync(h.Stored[0]));
        Assert.Equal(SessionHarness.ReceivedHeader("client.test", "127.0.0.1", "ESMTP", h.Stored[1].Id, "r2@localhost") + "message 2\r\n", await h.ReadBodyTextAsync(h.Stored[1]));
    }

    [Fact]
    public async Task Dot_stuffed_lines_are_unstuffed()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        await h.SendAsync("..x\r\n...\r\n..\r\nmid.dle\r\n.\r\n");
        Assert.StartsWith("250 2.0.0 Ok: queued as ", Assert.Single(await h.ReadReplyAsync()));
        var body = await h.ReadBodyTextAsync(Assert.Single(h.Stored));
        Assert.EndsWith("+0000\r\n.x\r\n..\r\n.\r\nmid.dle\r\n", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Null_reverse_path_is_accepted_and_stored_as_empty_sender()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("bounce\r\n."));
        Assert.Equal("", Assert.Single(h.Stored).Sender);
    }

    [Fact]
    public async Task Eight_bit_body_with_body_8bitmime_is_stored_byte_for_byte()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test> BODY=8BITMIME"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        byte[] text = [0xC3, 0xA9, 0x74, 0xC3, 0xA9, 0xFF, 0x01, 0x80, 0x0D, 0x0A];
        await h.SendAsync([.. text, .. ".\r\n"u8.ToArray()]);
        Assert.StartsWith("250 2.0.0 Ok: queued as ", Assert.Single(await h.ReadReplyAsync()));
        var body = await h.ReadBodyAsync(Assert.Single(h.Stored));
        Assert.Equal(text, body[^text.Length..]);
    }

    [Fact]
    public async Task A_data_line_longer_than_998_octets_is_refused_without_being_buffered_whole()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        var longLine = "." + new string('a', 100_000) + ".";
        // In two writes so the session must take the line in pieces, the CR of its end in the first.
        await h.SendAsync("first\r\n." + longLine + "\r");
        await h.SendAsync("\nlast\r\n.\r\n");
        Assert.Equal("550 5.6.0 Message has a line longer than 998 octets (RFC 5321 §4.5.3.1.6)", Assert.Single(await h.ReadReplyAsync()));
        Assert.Empty(h.Stored);
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync("NOOP"));
    }

    // ---- PIPELINING (RFC 2920) ----------------------------------------------------------------

    [Fact]
    public async Task Pipelined_envelope_commands_get_their_replies_in_order()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        await h.SendAsync("MAIL FROM:<a@b.test>\r\nRCPT TO:<one@localhost>\r\nRCPT TO:<two@localhost>\r\nDATA\r\n");
        Assert.Equal("250 2.1.0 Ok", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("250 2.1.5 Ok", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("250 2.1.5 Ok", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", Assert.Single(await h.ReadReplyAsync()));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("pipelined\r\n."));
        Assert.Equal(["one@localhost", "two@localhost"], Assert.Single(h.Stored).Recipients);
    }

    [Fact]
    public async Task A_whole_session_in_one_write_is_answered_in_order()
    {
        await using var h = SessionHarness.Start();
        await h.SendAsync(
            "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<bad>\r\nRCPT TO:<user@localhost>\r\nDATA\r\n" +
            "Subject: one\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\nNOOP\r\n");
        Assert.Equal("220 localhost ESMTP Sluice", await h.ReadLineAsync());
        Assert.Equal(8, (await h.ReadReplyAsync()).Count);
        Assert.Equal("250 2.1.0 Ok", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("501 5.1.3 Bad recipient address syntax: must be local-part@domain", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("250 2.1.5 Ok", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", Assert.Single(await h.ReadReplyAsync()));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("250 2.0.0 Ok", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("221 2.0.0 localhost closing connection", Assert.Single(await h.ReadReplyAsync()));
        await h.AssertClosedAsync(); // nothing for the NOOP after QUIT
        Assert.EndsWith("+0000\r\nSubject: one\r\n\r\nbody\r\n", await h.ReadBodyTextAsync(Assert.Single(h.Stored)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_command_split_across_writes_is_handled_once_complete()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        await h.SendAsync("MAIL FR");
        await h.SendAsync("OM:<a@b.test>\r");
        await h.SendAsync("\nNO");
        Assert.Equal("250 2.1.0 Ok", Assert.Single(await h.ReadReplyAsync()));
        await h.SendAsync("OP\r\n");
        Assert.Equal("250 2.0.0 Ok", Assert.Single(await h.ReadReplyAsync()));
    }

    // ---- sequence errors ----------------------------------------------------------------------

    [Fact]
    public async Task Mail_before_ehlo_is_503()
    {
        await using var h = await SessionHarness.StartGreetedAsync();
        Assert.Equal("503 5.5.1 Error: send HELO/EHLO first", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
    }

    [Fact]
    public async Task Rcpt_before_mail_is_503()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("503 5.5.1 Error: need MAIL command", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
    }

    [Fact]
    public async Task Data_before_mail_is_503()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("503 5.5.1 Error: need MAIL command", await h.CommandLineAsync("DATA"));
    }

    [Fact]
    public async Task Data_without_an_accepted_recipient_is_554()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("501 5.1.3 Bad recipient address syntax: must be local-part@domain", await h.CommandLineAsync("RCPT TO:<nobody>"));
        Assert.Equal("554 5.5.1 Error: no valid recipients", await h.CommandLineAsync("DATA"));
        // Still in the command phase, not in DATA.
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync("NOOP"));
    }

    [Fact]
    public async Task Data_with_an_argument_is_501()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("501 5.5.4 Syntax: DATA", await h.CommandLineAsync("DATA now"));
    }

    [Fact]
    public async Task Nested_mail_is_503()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("503 5.5.1 Error: nested MAIL command", await h.CommandLineAsync("MAIL FROM:<c@d.test>"));
    }

    [Fact]
    public async Task Rset_ends_the_transaction()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync("RSET"));
        Assert.Equal("503 5.5.1 Error: need MAIL command", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<c@d.test>"));
    }

    [Fact]
    public async Task A_second_ehlo_resets_the_transaction()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 ENHANCEDSTATUSCODES", (await h.CommandAsync("EHLO again.test"))[^1]);
        Assert.Equal("503 5.5.1 Error: need MAIL command", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
    }

    [Fact]
    public async Task Noop_vrfy_and_help_reply()
    {
        await using var h = await SessionHarness.StartGreetedAsync();
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync("NOOP"));
        Assert.Equal("252 2.5.0 Cannot verify the user, but will accept mail and try delivery", await h.CommandLineAsync("VRFY user"));
        Assert.Equal("214 2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY", await h.CommandLineAsync("HELP"));
    }

    // ---- syntax -------------------------------------------------------------------------------

    [Theory]
    [InlineData("MAIL FROM:bad")]
    [InlineData("MAIL FROM:a@b.test")]
    [InlineData("MAIL FROM:<a@b.test")]
    [InlineData("MAIL TO:<a@b.test>")]
    [InlineData("MAIL")]
    public async Task Malformed_mail_is_501_5_5_4(string command)
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("501 5.5.4 Syntax: MAIL FROM:<address>", await h.CommandLineAsync(command));
    }

    [Theory]
    [InlineData("RCPT TO:user@localhost")]
    [InlineData("RCPT FROM:<user@localhost>")]
    [InlineData("RCPT TO:<user@localhost")]
    public async Task Malformed_rcpt_is_501_5_5_4(string command)
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("501 5.5.4 Syntax: RCPT TO:<address>", await h.CommandLineAsync(command));
    }

    [Theory]
    [InlineData("<user>", "must be local-part@domain")]
    [InlineData("<user@>", "must be local-part@domain")]
    [InlineData("<>", "must be local-part@domain")]
    [InlineData("<us er@localhost>", "\"us er\" is neither a dot-string nor a quoted string (RFC 5321 §4.1.2)")]
    [InlineData("<a..b@localhost>", "\"a..b\" is neither a dot-string nor a quoted string (RFC 5321 §4.1.2)")]
    [InlineData("<.a@localhost>", "\".a\" is neither a dot-string nor a quoted string (RFC 5321 §4.1.2)")]
    [InlineData("<a\"b@localhost>", "\"a\"b\" is neither a dot-string nor a quoted string (RFC 5321 §4.1.2)")]
    [InlineData("<\"a\"b\"@localhost>", "\"\"a\"b\"\" is neither a dot-string nor a quoted string (RFC 5321 §4.1.2)")]
    [InlineData("<user@remote.test@localhost>", "\"user@remote.test\" is neither a dot-string nor a quoted string (RFC 5321 §4.1.2)")]
    [InlineData("<\"a\tb\"@localhost>", "contains a space, bracket or control character")]
    [InlineData("<\"a b\"@local host>", "contains a space, bracket or control character")]
    [InlineData("<user@bad_domain!>", "\"bad_domain!\" is not a domain")]
    public async Task Bad_recipient_is_501_5_1_3(string path, string problem)
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal($"501 5.1.3 Bad recipient address syntax: {problem}", await h.CommandLineAsync($"RCPT TO:{path}"));
    }

    [Fact]
    public async Task Bad_sender_is_553_5_1_7()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("553 5.1.7 Bad sender address syntax: must be local-part@domain", await h.CommandLineAsync("MAIL FROM:<nodomain>"));
    }

    [Fact]
    public async Task A_path_of_256_octets_is_accepted_and_257_rejected_and_a_long_SRS_local_part_is_fine()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        // "<" + local + "@b.test" + ">": 9 octets besides the local part; the same for "@localhost" is 12.
        Assert.Equal("553 5.1.7 Bad sender address syntax: path longer than 256 octets", await h.CommandLineAsync($"MAIL FROM:<{new string('l', 248)}@b.test>"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync($"MAIL FROM:<{new string('l', 247)}@b.test>"));
        Assert.Equal("501 5.1.3 Bad recipient address syntax: path longer than 256 octets", await h.CommandLineAsync($"RCPT TO:<{new string('l', 245)}@localhost>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync($"RCPT TO:<{new string('l', 244)}@localhost>"));
        // RFC 5321 §4.5.3.1.1's 64 octets would refuse this forwarder's sender; Postfix takes it, and so do we.
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<SRS0=HHH=TT=very-long-original-domain.example.org=a.rather.long.local.part@localhost>"));
    }

    [Fact]
    public async Task Source_route_is_accepted_and_ignored()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<@relay.test:a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<@relay.test,@other.test:user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("x\r\n."));
        var stored = Assert.Single(h.Stored);
        Assert.Equal("a@b.test", stored.Sender);
        Assert.Equal(["user@localhost"], stored.Recipients);
    }

    [Fact]
    public async Task A_quoted_local_part_is_valid_in_MAIL_and_RCPT_and_kept_in_canonical_form()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<\"Jo Q. Public\"@client.test> SIZE=10"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<\"a b\"@localhost>"));
        // A '>' or '"' inside the quotes is the local part's, not the end of the path.
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<\"x>y\\\"z\"@localhost> NOTIFY=FAILURE"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<\"\\c\"@localhost>"));
        // "ab" and ab are one mailbox (RFC 5322 §3.2.4): the second is the same recipient, delivered once.
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<\"ab\"@localhost>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<ab@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("x\r\n."));
        var stored = Assert.Single(h.Stored);
        Assert.Equal("\"Jo Q. Public\"@client.test", stored.Sender);
        Assert.Equal(["\"a b\"@localhost", "\"x>y\\\"z\"@localhost", "c@localhost", "ab@localhost"], stored.Recipients);
        Assert.Equal(Core.Mail.DsnNotify.Failure, stored.Envelope.DsnOf(1).Notify);
    }

    [Theory]
    [InlineData("MAIL FROM:<a@b.test> AUTH", "501 5.5.4 Bad AUTH parameter")]
    [InlineData("MAIL FROM:<a@b.test> BODY=BINARYMIME", "501 5.5.4 Bad BODY parameter")]
    [InlineData("MAIL FROM:<a@b.test> SIZE=abc", "501 5.5.4 Bad SIZE parameter")]
    [InlineData("MAIL FROM:<a@b.test> SIZE=-1", "501 5.5.4 Bad SIZE parameter")]
    public async Task Bad_mail_parameters_are_rejected(string command, string expected)
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal(expected, await h.CommandLineAsync(command));
        Assert.Equal("503 5.5.1 Error: need MAIL command", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
    }

    [Fact]
    public async Task Rcpt_parameters_are_rejected()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("555 5.5.4 Unsupported RCPT parameter XFORWARD", await h.CommandLineAsync("RCPT TO:<user@localhost> XFORWARD=1"));
        Assert.Equal("501 5.5.4 Bad NOTIFY parameter", await h.CommandLineAsync("RCPT TO:<user@localhost> NOTIFY=NEVER,SUCCESS"));
        Assert.Equal("501 5.5.4 Bad ORCPT parameter", await h.CommandLineAsync("RCPT TO:<user@localhost> ORCPT=no-type"));
    }

    [Fact]
    public async Task Unknown_command_is_502_and_empty_line_is_500()
    {
        await using var h = await SessionHarness.StartGreetedAsync();
        Assert.Equal("502 5.5.2 Error: command not recognized", await h.CommandLineAsync("FROB"));
        Assert.Equal("502 5.5.1 Error: STARTTLS is not offered", await h.CommandLineAsync("STARTTLS"));
        Assert.Equal("500 5.5.2 Error: empty command", await h.CommandLineAsync(""));
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync("NOOP"));
    }

    [Fact]
    public async Task Command_line_of_512_octets_is_accepted_and_513_is_500_5_5_6()
    {
        await using var h = await SessionHarness.StartGreetedAsync();
        var exact = "NOOP " + new string('x', 512 - 5 - 2); // 512 octets with its CRLF
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync(exact));
        Assert.Equal("500 5.5.6 Command line too long (RFC 5321 §4.5.3.1.4)", await h.CommandLineAsync(exact + "x"));
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync("NOOP"));
    }

    [Fact]
    public async Task Overlong_command_line_in_one_write_is_500_and_the_session_goes_on()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        await h.SendAsync("MAIL FROM:<" + new string('a', 600) + "@b.test>\r\nMAIL FROM:<a@b.test>\r\n");
        Assert.Equal("500 5.5.6 Command line too long (RFC 5321 §4.5.3.1.4)", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("250 2.1.0 Ok", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("after the long line\r\n."));
        Assert.Single(h.Stored);
    }

    [Fact]
    public async Task Overlong_command_line_arriving_in_pieces_gets_one_500_and_its_tail_is_ignored()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        // 1000 octets with no LF: the session must give up on the line without waiting for its end.
        await h.SendAsync("NOOP " + new string('a', 995));
        Assert.Equal("500 5.5.6 Command line too long (RFC 5321 §4.5.3.1.4)", Assert.Single(await h.ReadReplyAsync()));
        await h.SendAsync(new string('b', 1000));
        // The tail of the long line (up to its LF) is dropped, not read as a command; the next line is.
        await h.SendAsync("QUIT tail of the long line\r\nNOOP\r\n");
        Assert.Equal("250 2.0.0 Ok", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("221 2.0.0 localhost closing connection", await h.CommandLineAsync("QUIT"));
        await h.AssertClosedAsync();
    }

    // ---- relay --------------------------------------------------------------------------------

    [Fact]
    public async Task Outside_client_may_not_relay_to_a_remote_domain()
    {
        await using var h = await SessionHarness.StartEhloAsync(remote: IPAddress.Parse("192.0.2.1"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("554 5.7.1 <user@remote.example>: Relay access denied", await h.CommandLineAsync("RCPT TO:<user@remote.example>"));
        Assert.Equal("554 5.7.1 <user@[198.51.100.1]>: Relay access denied", await h.CommandLineAsync("RCPT TO:<user@[198.51.100.1]>"));
        Assert.Equal("554 5.5.1 Error: no valid recipients", await h.CommandLineAsync("DATA"));
        Assert.Empty(h.Stored);
    }

    [Fact]
    public async Task Outside_client_may_send_to_a_local_domain()
    {
        await using var h = await SessionHarness.StartEhloAsync(remote: IPAddress.Parse("192.0.2.1"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<other@LocalHost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("hi\r\n."));
        var stored = Assert.Single(h.Stored);
        Assert.StartsWith("Received: from client.test ([192.0.2.1])\r\n", await h.ReadBodyTextAsync(stored), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Outside_client_may_send_to_a_configured_local_domain()
    {
        await using var h = await SessionHarness.StartEhloAsync(o => o.Smtp.LocalDomains = ["example.com", "example.net"], IPAddress.Parse("192.0.2.1"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@example.net>"));
        Assert.Equal("554 5.7.1 <user@localhost>: Relay access denied", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.9.8.7")]
    [InlineData("::1")]
    [InlineData("::ffff:127.0.0.1")]
    public async Task Relay_network_client_may_send_to_a_remote_domain(string ip)
    {
        await using var h = await SessionHarness.StartEhloAsync(remote: IPAddress.Parse(ip));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@remote.example>"));
    }

    [Fact]
    public async Task Configured_relay_network_is_honoured_and_mapped_ipv4_is_shown_as_ipv4()
    {
        await using var h = await SessionHarness.StartEhloAsync(
            o => o.Smtp.RelayNetworks = ["192.0.2.0/24"], IPAddress.Parse("::ffff:192.0.2.77"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@remote.example>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("x\r\n."));
        Assert.StartsWith("Received: from client.test ([192.0.2.77])\r\n", await h.ReadBodyTextAsync(Assert.Single(h.Stored)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ipv6_client_is_written_as_an_ipv6_address_literal_in_the_trace_header()
    {
        // RFC 5321 §4.4 TCP-info is an address-literal, and §4.1.3 spells an IPv6 one "[IPv6:...]".
        await using var h = await SessionHarness.StartEhloAsync(o => o.Smtp.RelayNetworks = ["2001:db8::/32"], IPAddress.Parse("2001:db8::25"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@remote.example>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("x\r\n."));
        Assert.StartsWith("Received: from client.test ([IPv6:2001:db8::25])\r\n", await h.ReadBodyTextAsync(Assert.Single(h.Stored)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Loopback_is_not_a_relay_client_when_relay_networks_are_empty()
    {
        await using var h = await SessionHarness.StartEhloAsync(o => o.Smtp.RelayNetworks = []);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("554 5.7.1 <user@remote.example>: Relay access denied", await h.CommandLineAsync("RCPT TO:<user@remote.example>"));
    }

    // ---- postmaster (RFC 5321 §4.5.1) ---------------------------------------------------------

    [Theory]
    [InlineData("postmaster")]
    [InlineData("Postmaster")]
    [InlineData("POSTMASTER")]
    public async Task Bare_postmaster_is_accepted_even_from_outside(string name)
    {
        await using var h = await SessionHarness.StartEhloAsync(remote: IPAddress.Parse("192.0.2.1"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync($"RCPT TO:<{name}>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("to the postmaster\r\n."));
        Assert.Equal(["postmaster@localhost"], Assert.Single(h.Stored).Recipients);
    }

    [Fact]
    public async Task Bare_postmaster_goes_to_the_first_local_domain()
    {
        await using var h = await SessionHarness.StartEhloAsync(o => o.Smtp.LocalDomains = ["example.com", "example.net"], IPAddress.Parse("192.0.2.1"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<postmaster>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("x\r\n."));
        Assert.Equal(["postmaster@example.com"], Assert.Single(h.Stored).Recipients);
    }

    // ---- size limits --------------------------------------------------------------------------

    [Fact]
    public async Task Mail_size_above_the_limit_is_552_and_at_the_limit_is_accepted()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal($"552 5.3.4 Message size exceeds fixed limit of {DefaultMax} bytes", await h.CommandLineAsync($"MAIL FROM:<a@b.test> SIZE={DefaultMax + 1}"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync($"MAIL FROM:<a@b.test> SIZE={DefaultMax}"));
    }

    [Fact]
    public async Task Mail_size_above_a_configured_limit_is_552()
    {
        await using var h = await SessionHarness.StartEhloAsync(o => o.Smtp.MaxMessageBytes = 2000);
        Assert.Equal("552 5.3.4 Message size exceeds fixed limit of 2000 bytes", await h.CommandLineAsync("MAIL FROM:<a@b.test> size=2001"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test> SIZE=1999 BODY=7BIT"));
    }

    [Fact]
    public async Task Data_above_the_limit_is_552_after_the_end_of_data_and_nothing_is_stored()
    {
        await using var h = await SessionHarness.StartEhloAsync(o => o.Smtp.MaxMessageBytes = 2000);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        var line = new string('x', 78) + "\r\n";
        await h.SendAsync(string.Concat(Enumerable.Repeat(line, 40))); // 3200 octets
        await h.SendAsync("NOOP\r\n"); // part of the message, so no reply
        await h.SendAsync(".\r\n");
        Assert.Equal("552 5.3.4 Message size exceeds fixed limit of 2000 bytes", Assert.Single(await h.ReadReplyAsync()));
        Assert.Empty(h.Stored);
        Assert.Equal(0, h.Store.MessageCount);
        // The transaction is over; the session is back to commands and a small message goes through.
        Assert.Equal("503 5.5.1 Error: need MAIL command", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("small\r\n."));
        Assert.EndsWith("+0000\r\nsmall\r\n", await h.ReadBodyTextAsync(Assert.Single(h.Stored)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Data_of_exactly_the_limit_is_accepted_the_trace_header_not_counted()
    {
        // RFC 1870 §6: a message of the SIZE the server took at MAIL must be accepted; our own Received is not the client's.
        const int max = 2000;
        await using var h = await SessionHarness.StartEhloAsync(o => o.Smtp.MaxMessageBytes = max);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync($"MAIL FROM:<a@b.test> SIZE={max}"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync(Lines(max) + "."));
        var stored = Assert.Single(h.Stored);
        var header = SessionHarness.ReceivedHeader("client.test", "127.0.0.1", "ESMTP", stored.Id, "user@localhost");
        Assert.Equal(Encoding.UTF8.GetByteCount(header) + max, (await h.ReadBodyAsync(stored)).Length);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.Equal("552 5.3.4 Message size exceeds fixed limit of 2000 bytes", await h.CommandLineAsync("y" + Lines(max) + "."));
        Assert.Single(h.Stored);
    }

    /// <summary>Exactly <paramref name="octets"/> of CRLF-ended text lines, each within the 998-octet limit.</summary>
    private static string Lines(int octets)
    {
        var sb = new StringBuilder();
        while (octets - sb.Length > 100) sb.Append('y', 98).Append("\r\n");
        return sb.Append('y', octets - sb.Length - 2).Append("\r\n").ToString();
    }

    [Fact]
    public async Task After_a_message_over_1MiB_the_session_does_not_keep_its_large_buffer()
    {
        // SmtpSession.ResetTransaction means to drop a buffer grown past 1 MiB ("do not keep a huge
        // buffer for the next small message"); the buffer is private, so it is looked at by reflection.
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        var line = new string('b', 998) + "\r\n";
        await h.SendAsync(string.Concat(Enumerable.Repeat(line, 3 * 1024)) + ".\r\n"); // 3 MiB
        Assert.StartsWith("250 2.0.0 Ok: queued as ", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("small\r\n."));
        Assert.Equal(2, h.Stored.Count);
        Assert.Equal(3 * 1024 * 1000, (await h.ReadBodyAsync(h.Stored[0])).Length - Encoding.UTF8.GetByteCount(
            SessionHarness.ReceivedHeader("client.test", "127.0.0.1", "ESMTP", h.Stored[0].Id, "user@localhost")));

        var content = typeof(SmtpSession).GetField("_content", BindingFlags.NonPublic | BindingFlags.Instance)?.GetValue(h.Session);
        Assert.NotNull(content);
        var field = content.GetType().GetField("_buffer", BindingFlags.NonPublic | BindingFlags.Instance);
        Assert.NotNull(field);
        var body = Assert.IsType<ArrayBufferWriter<byte>>(field.GetValue(content));
        Assert.True(body.Capacity <= 1 << 20, $"the session still holds a {body.Capacity}-byte body buffer after a small message");
    }

    [Fact]
    public async Task Third_recipient_over_max_recipients_2_is_452_and_the_first_two_are_kept()
    {
        await using var h = await SessionHarness.StartEhloAsync(o => o.Smtp.MaxRecipients = 2);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<one@localhost>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<two@localhost>"));
        Assert.Equal("452 4.5.3 Error: too many recipients", await h.CommandLineAsync("RCPT TO:<three@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("x\r\n."));
        Assert.Equal(["one@localhost", "two@localhost"], Assert.Single(h.Stored).Recipients);
    }

    [Fact]
    public async Task Too_many_recipients_does_not_count_as_an_error()
    {
        await using var h = await SessionHarness.StartEhloAsync(o => o.Smtp.MaxRecipients = 1);
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<one@localhost>"));
        for (var i = 0; i < 15; i++)
            Assert.Equal("452 4.5.3 Error: too many recipients", await h.CommandLineAsync($"RCPT TO:<r{i}@localhost>"));
        Assert.Equal("250 2.0.0 Ok", await h.CommandLineAsync("NOOP"));
    }

    // ---- SMTP smuggling -----------------------------------------------------------------------

    [Theory]
    [InlineData("\n.\n")]
    [InlineData("\r\n.\n")]
    [InlineData("\n.\r\n")]
    [InlineData("\r.\r\n")]
    public async Task A_non_crlf_end_of_data_does_not_end_the_data(string fakeEnd)
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        // The classic smuggling payload: a fake end of data and a second transaction behind it.
        await h.SendAsync(
            "Subject: outer\r\n\r\ntext" + fakeEnd +
            "MAIL FROM:<admin@localhost>\r\nRCPT TO:<victim@localhost>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n");
        var reply = Assert.Single(await h.ReadReplyAsync());
        // Whatever the verdict on the whole, there is exactly one message and no smuggled transaction.
        await h.SendAsync("NOOP\r\n");
        Assert.Equal("250 2.0.0 Ok", Assert.Single(await h.ReadReplyAsync()));
        // A bare CR is not a line end either: the whole is refused, never split into two messages.
        Assert.Equal(fakeEnd == "\r.\r\n"
            ? "550 5.6.0 Message contains a bare CR (RFC 5321 §2.3.8); use CRLF"
            : "550 5.6.0 Message contains bare LF line endings (RFC 5321 §2.3.8); use CRLF", reply);
        Assert.Empty(h.Stored);
        Assert.Equal(0, h.Store.MessageCount);
    }

    [Fact]
    public async Task Bare_lf_message_is_rejected_550_only_at_the_proper_end_of_data()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        await h.SendAsync("Subject: unix\n\nline one\nline two\n.\n");
        // Still in DATA: a command now is message text and gets no reply; the CRLF.CRLF ends it.
        await h.SendAsync("QUIT\r\n.\r\n");
        Assert.Equal("550 5.6.0 Message contains bare LF line endings (RFC 5321 §2.3.8); use CRLF", Assert.Single(await h.ReadReplyAsync()));
        Assert.Empty(h.Stored);
        // The transaction is over; a proper message follows.
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await h.CommandLineAsync("Subject: ok\r\n\r\nfine\r\n."));
        Assert.EndsWith("+0000\r\nSubject: ok\r\n\r\nfine\r\n", await h.ReadBodyTextAsync(Assert.Single(h.Stored)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task End_of_data_split_across_writes_is_recognised()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        await h.SendAsync("body\r");
        await h.SendAsync("\n.");
        await h.SendAsync("\r");
        await h.SendAsync("\nNOOP\r\n");
        Assert.StartsWith("250 2.0.0 Ok: queued as ", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("250 2.0.0 Ok", Assert.Single(await h.ReadReplyAsync()));
        Assert.EndsWith("+0000\r\nbody\r\n", await h.ReadBodyTextAsync(Assert.Single(h.Stored)), StringComparison.Ordinal);
    }

    // ---- error limit, QUIT, disconnect --------------------------------------------------------

    [Fact]
    public async Task Ten_errors_end_the_session_with_421()
    {
        await using var h = await SessionHarness.StartGreetedAsync();
        for (var i = 1; i < 10; i++)
            Assert.Equal("502 5.5.2 Error: command not recognized", await h.CommandLineAsync($"BOGUS{i}"));
        await h.SendAsync("BOGUS10\r\nNOOP\r\n");
        Assert.Equal("502 5.5.2 Error: command not recognized", Assert.Single(await h.ReadReplyAsync()));
        Assert.Equal("421 4.7.0 localhost Error: too many errors", Assert.Single(await h.ReadReplyAsync()));
        await h.AssertClosedAsync(); // no reply to the NOOP
    }

    [Fact]
    public async Task Errors_of_every_kind_count_toward_the_limit()
    {
        await using var h = await SessionHarness.StartGreetedAsync(remote: IPAddress.Parse("192.0.2.1"));
        Assert.Equal("503 5.5.1 Error: send HELO/EHLO first", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));   // 1
        Assert.Equal("501 5.5.4 Syntax: EHLO hostname", await h.CommandLineAsync("EHLO"));                        // 2
        Assert.Equal("250 localhost", await h.CommandLineAsync("HELO client.test"));
        Assert.Equal("503 5.5.1 Error: need MAIL command", await h.CommandLineAsync("RCPT TO:<user@localhost>"));  // 3
        Assert.Equal("501 5.5.4 Syntax: MAIL FROM:<address>", await h.CommandLineAsync("MAIL FROM:bad"));        // 4
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("503 5.5.1 Error: nested MAIL command", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));   // 5
        Assert.Equal("501 5.1.3 Bad recipient address syntax: must be local-part@domain", await h.CommandLineAsync("RCPT TO:<x>")); // 6
        Assert.Equal("554 5.7.1 <x@remote.example>: Relay access denied", await h.CommandLineAsync("RCPT TO:<x@remote.example>")); // 7
        Assert.Equal("554 5.5.1 Error: no valid recipients", await h.CommandLineAsync("DATA"));                   // 8
        Assert.Equal("500 5.5.2 Error: empty command", await h.CommandLineAsync(""));                             // 9
        Assert.Equal(["500 5.5.6 Command line too long (RFC 5321 §4.5.3.1.4)", "421 4.7.0 localhost Error: too many errors"],
            await ReadTwoAsync(h, "NOOP " + new string('z', 600)));                                                // 10
        await h.AssertClosedAsync();

        static async Task<string[]> ReadTwoAsync(SessionHarness h, string line)
        {
            await h.SendAsync(line + "\r\n");
            return [Assert.Single(await h.ReadReplyAsync()), Assert.Single(await h.ReadReplyAsync())];
        }
    }

    [Fact]
    public async Task Quit_is_221_and_run_completes()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("221 2.0.0 localhost closing connection", await h.CommandLineAsync("QUIT"));
        await h.AssertClosedAsync();
        Assert.True(h.Run.IsCompletedSuccessfully);
        Assert.Empty(h.Stored);
    }

    [Fact]
    public async Task Quit_before_ehlo_is_221()
    {
        await using var h = await SessionHarness.StartGreetedAsync();
        Assert.Equal("221 2.0.0 localhost closing connection", await h.CommandLineAsync("quit"));
        await h.AssertClosedAsync();
    }

    [Fact]
    public async Task Client_disconnect_ends_the_session_quietly()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        h.Disconnect();
        await h.AssertClosedAsync();
        Assert.True(h.Run.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Client_disconnect_during_data_stores_nothing()
    {
        await using var h = await SessionHarness.StartEhloAsync();
        Assert.Equal("250 2.1.0 Ok", await h.CommandLineAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("250 2.1.5 Ok", await h.CommandLineAsync("RCPT TO:<user@localhost>"));
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>", await h.CommandLineAsync("DATA"));
        await h.SendAsync("Subject: cut\r\n\r\nhalf a mess");
        h.Disconnect();
        await h.AssertClosedAsync();
        Assert.True(h.Run.IsCompletedSuccessfully);
        Assert.Empty(h.Stored);
        Assert.Equal(0, h.Store.MessageCount);
    }
}
