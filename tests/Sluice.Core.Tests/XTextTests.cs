// RFC 3461 §4 xtext both ways (the receiver decodes ENVID and ORCPT, the relay encodes them), and
// RFC 6533 §3 utf-8-addr-xtext for internationalised addresses in a delivery-status report (and
// utf-8-addr-unitext, UTF-8 kept, in a global-delivery-status report).
using Sluice.Core.Mail;

namespace Sluice.Core.Tests;

public sealed class XTextTests
{
    [Theory]
    [InlineData("bob@example.com", "bob@example.com")]
    [InlineData("bob+tag@example.com", "bob+2Btag@example.com")]
    [InlineData("a=b c", "a+3Db+20c")]
    [InlineData("tab\there", "tab+09here")]
    [InlineData("ü", "+C3+BC")]
    [InlineData("", "")]
    public void Encodes_and_decodes_back(string value, string xtext)
    {
        Assert.Equal(xtext, XText.Encode(value));
        Assert.True(XText.TryDecode(xtext, out var decoded));
        Assert.Equal(value, decoded);
    }

    [Fact]
    public void Decoding_accepts_lower_case_hex()
    {
        Assert.True(XText.TryDecode("a+2bb", out var decoded));
        Assert.Equal("a+b", decoded);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("a b")]      // space is not an xchar
    [InlineData("a=b")]      // "=" must be encoded
    [InlineData("a+2")]      // "+" needs two hex digits
    [InlineData("a+")]
    [InlineData("a+G0")]
    [InlineData("ü")]        // only ASCII on the wire
    [InlineData("a\r\nb")]
    public void Rejects_what_is_not_xtext(string? xtext) => Assert.False(XText.TryDecode(xtext, out _));

    [Theory]
    [InlineData("bob@example.com", "bob@example.com")]
    [InlineData("用户@example.com", @"\x{7528}\x{6237}@example.com")]
    [InlineData("a+b=c\\d e@x", @"a\x{2B}b\x{3D}c\x{5C}d\x{20}e@x")]
    [InlineData("😀@x", @"\x{1F600}@x")]
    public void Encodes_an_internationalised_address_as_utf8_addr_xtext(string address, string encoded) =>
        Assert.Equal(encoded, XText.EncodeUtf8Address(address));

    [Theory]
    [InlineData("用户@example.com", "用户@example.com")]
    [InlineData("用+户 x@x", @"用\x{2B}户\x{20}x@x")]
    [InlineData("😀@x", "😀@x")]
    public void Encodes_an_internationalised_address_as_utf8_addr_unitext_for_a_global_report(string address, string encoded) =>
        Assert.Equal(encoded, XText.EncodeUtf8Address(address, unicode: true));
}
