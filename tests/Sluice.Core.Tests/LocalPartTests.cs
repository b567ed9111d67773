// RFC 5321 §4.1.2 local parts: what parses, the canonical form each is kept in (quotes only where
// needed, so "ab" and ab are one), and that the canonical form parses back to itself.
using Sluice.Core.Mail;

namespace Sluice.Core.Tests;

public sealed class LocalPartTests
{
    [Theory]
    [InlineData("alice", "alice")]
    [InlineData("a.b", "a.b")]
    [InlineData("x%y!z/w", "x%y!z/w")]                 // all atext, even '/': a Dot-string needs no quotes
    [InlineData("\"alice\"", "alice")]                 // quotes around a Dot-string are dropped
    [InlineData("\"Al\\ice\"", "Alice")]               // so is a needless quoted-pair
    [InlineData("\"a b\"", "\"a b\"")]
    [InlineData("\"a\\ b\"", "\"a b\"")]
    [InlineData("\"a\\\"b\"", "\"a\\\"b\"")]           // '"' and '\' stay escaped
    [InlineData("\"a\\\\b\"", "\"a\\\\b\"")]
    [InlineData("\"a..b\"", "\"a..b\"")]
    [InlineData("\".x\"", "\".x\"")]
    [InlineData("\"a@b\"", "\"a@b\"")]
    [InlineData("\"a>b\"", "\"a>b\"")]
    [InlineData("\"\"", "\"\"")]                       // the empty Quoted-string is valid syntax
    [InlineData("jörg", "jörg")]                       // RFC 6531 UTF-8 atext
    [InlineData("\"jö rg\"", "\"jö rg\"")]
    public void A_valid_local_part_parses_to_its_canonical_form_which_parses_to_itself(string sent, string canonical)
    {
        Assert.True(LocalPart.TryParse(sent, out var parsed));
        Assert.Equal(canonical, parsed);
        Assert.True(LocalPart.TryParse(parsed, out var again));
        Assert.Equal(parsed, again);
        Assert.Equal(LocalPart.Content(sent), LocalPart.Content(parsed));
    }

    [Theory]
    [InlineData("")]
    [InlineData(".a")]
    [InlineData("a.")]
    [InlineData("a..b")]
    [InlineData("a b")]
    [InlineData("a\"b")]
    [InlineData("a@b")]
    [InlineData("a\\b")]
    [InlineData("\"a")]
    [InlineData("\"a\"b\"")]     // an unescaped quote inside
    [InlineData("\"a\\\"")]      // the closing quote escaped
    [InlineData("\"a\tb\"")]     // a control character is no qtext
    [InlineData("\"a\\\tb\"")]   // nor can a quoted-pair carry one
    [InlineData("\"a\u0085b\"")] // nor a C1 control
    [InlineData("a\u0001b")]
    public void Anything_else_is_bad_syntax(string sent)
    {
        Assert.False(LocalPart.TryParse(sent, out _));
    }

    [Fact]
    public void Content_takes_off_quotes_and_escapes()
    {
        Assert.Equal("a\"b", LocalPart.Content("\"a\\\"b\""));
        Assert.Equal("a b", LocalPart.Content("\"a b\""));
        Assert.Equal("alice", LocalPart.Content("alice"));
        Assert.Equal("\"a b\"@Example.TEST", Address.Canonical("\"a\\ b\"@Example.TEST"));
        Assert.Equal("Alice@d.test", Address.Canonical("\"Alice\"@d.test"));
        Assert.Equal("\"a@b\"@d.test", Address.Canonical("\"a@b\"@d.test"));
    }
}
