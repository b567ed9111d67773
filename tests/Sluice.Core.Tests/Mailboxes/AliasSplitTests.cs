// The one alias expansion every way into the queue uses: direct recipients kept together, one message
// per alias marked with Delivered-To and ORCPT, duplicates once, and with SRS only the share leaving
// for other domains rewritten (never the null sender of a bounce, never our own domains' senders).
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Core.Mailboxes;

namespace Sluice.Core.Tests.Mailboxes;

public sealed class AliasSplitTests
{
    private static readonly byte[] Body = "Subject: s\r\n\r\nbody\r\n"u8.ToArray();

    private static MailboxMap Map(bool srs)
    {
        var o = new SluiceOptions();
        o.Mailboxes.Users["alice@local.test"] = new MailboxUserOptions();
        o.Mailboxes.Users["bob@local.test"] = new MailboxUserOptions();
        o.Mailboxes.Aliases["team@local.test"] = ["alice@local.test", "carol@remote.example"];
        if (srs) o.Mailboxes.Srs = new SrsOptions { Domain = "srs.local.test", Secret = "sixteen characters or more" };
        return new MailboxMap(o);
    }

    [Fact]
    public void Mail_without_an_alias_is_one_part_unchanged()
    {
        var envelope = new Envelope("x@client.test", ["alice@local.test", "dan@remote.example"]);
        var part = Assert.Single(AliasSplit.Split(envelope, Body, Map(srs: false)));
        Assert.Same(envelope, part.Envelope);
    }

    [Fact]
    public void A_bounce_to_an_alias_reaches_its_mailboxes_with_the_null_sender_and_the_alias_as_ORCPT()
    {
        var bounce = new Envelope("", ["team@local.test"]) { EightBitMime = true };
        var part = Assert.Single(AliasSplit.Split(bounce, Body, Map(srs: true)));
        Assert.Equal("", part.Envelope.Sender);
        Assert.Equal(["alice@local.test", "carol@remote.example"], part.Envelope.Recipients);
        Assert.True(part.Envelope.EightBitMime);
        Assert.All(part.Envelope.Dsn!, d => Assert.Equal("rfc822;team@local.test", d.OriginalRecipient));
        Assert.StartsWith("Delivered-To: team@local.test\r\nSubject: s\r\n", Encoding.UTF8.GetString(part.Message.Span), StringComparison.Ordinal);
    }

    [Fact]
    public void With_SRS_only_the_remote_share_of_an_alias_gets_the_rewritten_sender()
    {
        var parts = AliasSplit.Split(new Envelope("x@client.test", ["team@local.test"]), Body, Map(srs: true));
        Assert.Equal(2, parts.Count);
        Assert.Equal("x@client.test", parts[0].Envelope.Sender);
        Assert.Equal(["alice@local.test"], parts[0].Envelope.Recipients);
        Assert.Equal(["carol@remote.example"], parts[1].Envelope.Recipients);
        Assert.Matches(@"^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=client\.test=x@srs\.local\.test$", parts[1].Envelope.Sender);
        Assert.All(parts, p => Assert.StartsWith("Delivered-To: team@local.test\r\n", Encoding.UTF8.GetString(p.Message.Span), StringComparison.Ordinal));
    }

    [Fact]
    public void A_recipient_reached_directly_and_through_an_alias_gets_one_copy_in_the_direct_part()
    {
        var parts = AliasSplit.Split(new Envelope("x@client.test", ["bob@local.test", "team@local.test", "alice@local.test"]), Body, Map(srs: false));
        Assert.Equal(2, parts.Count);
        Assert.Equal(["bob@local.test", "alice@local.test"], parts[0].Envelope.Recipients);
        Assert.Null(parts[0].Envelope.Dsn);
        Assert.Equal(Body, parts[0].Message.ToArray());
        Assert.Equal(["carol@remote.example"], parts[1].Envelope.Recipients);
        Assert.Equal("x@client.test", parts[1].Envelope.Sender);
    }

    [Fact]
    public void Without_SRS_or_for_a_sender_of_our_own_the_forwarded_share_keeps_the_original_sender()
    {
        foreach (var (sender, srs) in new[] { ("x@client.test", false), ("bob@local.test", true) })
        {
            var part = Assert.Single(AliasSplit.Split(new Envelope(sender, ["team@local.test"]), Body, Map(srs)));
            Assert.Equal(sender, part.Envelope.Sender);
            Assert.Equal(["alice@local.test", "carol@remote.example"], part.Envelope.Recipients);
        }
    }

    [Fact]
    public void A_bounce_to_a_good_SRS_address_goes_to_the_sender_it_stands_for_unmarked_and_a_forged_one_is_left_for_delivery_to_fail()
    {
        var map = Map(srs: true);
        var srsAddress = map.Srs!.Forward("x@client.test");
        var part = Assert.Single(AliasSplit.Split(new Envelope("", [srsAddress]), Body, map));
        Assert.Equal(["x@client.test"], part.Envelope.Recipients);
        Assert.Equal(Body, part.Message.ToArray());

        var forged = new Envelope("", ["SRS0=AAAA=JN=client.test=x@srs.local.test"]);
        Assert.Same(forged, Assert.Single(AliasSplit.Split(forged, Body, map)).Envelope);
        Assert.True(map.Find(forged.Recipients[0]).Unknown);
    }
}
