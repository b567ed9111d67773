// SRS as libsrs2 writes it: forward and back, SRS1 for a sender already rewritten elsewhere, and the
// addresses refused: a wrong hash (forged or another secret), an expired timestamp, a malformed one.
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Sluice.Core.Mailboxes;

namespace Sluice.Core.Tests.Mailboxes;

public sealed class SenderRewritingTests
{
    private const string Secret = "a secret of sixteen or more";
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 24, 12, 0, 0, TimeSpan.Zero));
    private SenderRewriting Srs(string secret = Secret) => new("srs.example.org", secret, 21, _time);

    [Fact]
    public void A_sender_is_rewritten_to_SRS0_with_an_HMAC_and_the_day_and_reverses_to_itself()
    {
        var rewritten = Srs().Forward("Alice=X@Sender.Example");
        // Day 20781 since 1970 is 301 mod 1024: base32 "JN" (9, 13).
        var expectedHash = Convert.ToBase64String(HMACSHA1.HashData(Encoding.UTF8.GetBytes(Secret), "jnsender.examplealice=x"u8.ToArray()))[..4];
        Assert.Equal($"SRS0={expectedHash}=JN=sender.example=Alice=X@srs.example.org", rewritten);
        Assert.True(Srs().IsRewritten(rewritten));
        Assert.Equal("Alice=X@sender.example", Srs().Reverse(rewritten, out _));
        // Case changed on the way (some relays lower-case local parts): still good.
        Assert.Equal("alice=x@sender.example", Srs().Reverse(rewritten.ToLowerInvariant(), out _));
    }

    [Fact]
    public void A_quoted_sender_is_rewritten_to_one_quoted_local_part_that_parses_and_reverses_to_the_sender()
    {
        var rewritten = Srs().Forward("\"a b\"@sender.example");
        Assert.Matches("^\"SRS0=[^\"]{4}=JN=sender.example=a b\"@srs.example.org$", rewritten);
        Assert.True(Core.Mail.LocalPart.TryParse(Core.Mail.Address.LocalPartOf(rewritten), out var canonical));
        Assert.Equal(Core.Mail.Address.LocalPartOf(rewritten), canonical);
        Assert.True(Srs().IsRewritten(rewritten));
        Assert.Equal("\"a b\"@sender.example", Srs().Reverse(rewritten, out _));
        // Forwarded again, by us: SRS1 keeps it one quoted local part too.
        var again = Srs().Forward(rewritten);
        Assert.StartsWith("\"SRS1=", again, StringComparison.Ordinal);
        Assert.Equal(rewritten, Srs().Reverse(again, out _));
    }

    [Fact]
    public void An_address_with_a_wrong_hash_is_refused_as_forged()
    {
        var made = Srs("another secret, sixteen+").Forward("alice@sender.example");
        Assert.Null(Srs().Reverse(made, out var why));
        Assert.Equal("SRS address with a bad hash (forged)", why);
        var tampered = Srs().Forward("alice@sender.example").Replace("alice@", "mallory@", StringComparison.Ordinal);
        Assert.Null(Srs().Reverse(tampered, out why));
        Assert.Equal("SRS address with a bad hash (forged)", why);
    }

    [Fact]
    public void An_address_older_than_the_maximum_age_is_refused_as_expired_and_one_just_inside_is_good()
    {
        var made = Srs().Forward("alice@sender.example");
        _time.Advance(TimeSpan.FromDays(21));
        Assert.Equal("alice@sender.example", Srs().Reverse(made, out _));
        _time.Advance(TimeSpan.FromDays(1));
        Assert.Null(Srs().Reverse(made, out var why));
        Assert.Equal("SRS address too old (expired)", why);
    }

    [Fact]
    public void A_sender_already_rewritten_by_another_forwarder_becomes_SRS1_and_reverses_to_that_forwarders_address()
    {
        const string first = "SRS0=AbCd=JN=sender.example=alice@forwarder.example";
        var rewritten = Srs().Forward(first);
        Assert.Matches(@"^SRS1=[A-Za-z0-9+/]{4}=forwarder\.example==AbCd=JN=sender\.example=alice@srs\.example\.org$", rewritten);
        Assert.Equal(first, Srs().Reverse(rewritten, out _));
        // Forwarded once more: still one SRS1 hop back to the first forwarder, re-signed by us.
        var again = Srs().Forward(rewritten);
        Assert.Equal(first, Srs().Reverse(again, out _));
    }

    [Theory]
    [InlineData("SRS0=abcd=JN=sender.example@srs.example.org")]
    [InlineData("SRS0=abcd@srs.example.org")]
    [InlineData("SRS1=abcd=host@srs.example.org")]
    public void A_malformed_SRS_address_is_refused(string address)
    {
        Assert.True(Srs().IsRewritten(address));
        Assert.Null(Srs().Reverse(address, out var why));
        Assert.Equal("malformed SRS address", why);
    }

    [Fact]
    public void Only_SRS_local_parts_at_the_SRS_domain_are_rewritten_addresses()
    {
        Assert.False(Srs().IsRewritten("alice@srs.example.org"));
        Assert.False(Srs().IsRewritten("SRS0=abcd=JN=x.example=a@other.example"));
        Assert.True(Srs().IsRewritten("srs0+abcd=JN=x.example=a@SRS.example.org"));
    }
}
