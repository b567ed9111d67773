// AUTH PLAIN (RFC 4616) and AUTH LOGIN (RFC 4954) responses: what decodes, and what must not.
using System.Text;
using Sluice.Receive.Auth;

namespace Sluice.Receive.Tests;

public sealed class SaslCredentialsTests
{
    private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    [Theory]
    [InlineData("\0alice\0secret", "alice", "secret")]
    [InlineData("alice\0alice\0secret", "alice", "secret")]
    [InlineData("\0jörg\0pässwort with spaces", "jörg", "pässwort with spaces")]
    public void Plain_yields_authcid_and_password(string message, string user, string password)
    {
        Assert.True(SaslCredentials.TryDecodePlain(B64(message), out var u, out var p));
        Assert.Equal(user, u);
        Assert.Equal(password, p);
    }

    [Fact]
    public void Plain_decodes_the_rfc_4616_example()
    {
        // RFC 4616 §4: "\0tim\0tanstaaftanstaaf".
        Assert.True(SaslCredentials.TryDecodePlain("AHRpbQB0YW5zdGFhZnRhbnN0YWFm", out var user, out var password));
        Assert.Equal("tim", user);
        Assert.Equal("tanstaaftanstaaf", password);
    }

    [Theory]
    [InlineData("bob\0alice\0secret")]   // acting for someone else
    [InlineData("Alice\0alice\0secret")] // authzid differs in case
    [InlineData("alice\0secret")]        // one NUL only
    [InlineData("alicesecret")]          // none
    [InlineData("\0\0secret")]           // empty authcid
    [InlineData("\0alice\0")]            // empty password
    [InlineData("\0alice\0sec\0ret")]    // NUL inside the password
    [InlineData("\0ali\rce\0secret")]    // CR in a name
    [InlineData("\0ali\nce\0secret")]    // LF in a name
    [InlineData("x\ny\0alice\0secret")]  // LF in authzid
    [InlineData("")]
    public void Plain_refuses_malformed_messages(string message)
    {
        Assert.False(SaslCredentials.TryDecodePlain(B64(message), out _, out _));
    }

    [Theory]
    [InlineData("not base64!")]
    [InlineData("AGFsaWNlAHNlY3JldA")]    // padding missing
    [InlineData("AGFs aWNlAHNlY3JldA==")] // white space inside
    [InlineData("AGFsaWNlAHNlY3JldA==\r\n")]
    [InlineData("=AGFsaWNlAHNlY3JldA=")]
    public void Plain_refuses_invalid_base64(string base64)
    {
        Assert.False(SaslCredentials.TryDecodePlain(base64, out _, out _));
    }

    [Fact]
    public void Plain_refuses_invalid_utf8()
    {
        byte[] message = [0, (byte)'a', 0xC3, 0x28, 0, (byte)'p', (byte)'w']; // 0xC3 0x28 is no UTF-8 sequence
        Assert.False(SaslCredentials.TryDecodePlain(Convert.ToBase64String(message), out _, out _));
        byte[] inPassword = [0, (byte)'a', 0, 0xFF, (byte)'w'];
        Assert.False(SaslCredentials.TryDecodePlain(Convert.ToBase64String(inPassword), out _, out _));
    }

    [Theory]
    [InlineData("dXNlcm5hbWU=", "username")]
    [InlineData("asO2cmc=", "jörg")]
    [InlineData("", "")]
    public void Text_decodes_a_login_line(string base64, string expected)
    {
        Assert.True(SaslCredentials.TryDecodeText(base64, out var text));
        Assert.Equal(expected, text);
    }

    [Theory]
    [InlineData("a\0b")]
    [InlineData("a\rb")]
    [InlineData("a\nb")]
    [InlineData("ab\r\n")]
    public void Text_refuses_nul_cr_and_lf(string text)
    {
        Assert.False(SaslCredentials.TryDecodeText(B64(text), out _));
    }

    [Theory]
    [InlineData("dXNlcm5hbWU")]
    [InlineData("dXNl cm5hbWU=")]
    [InlineData("*")]
    [InlineData("dXNlcm5hbWU=dXNl")]
    public void Text_refuses_invalid_base64(string base64)
    {
        Assert.False(SaslCredentials.TryDecodeText(base64, out _));
    }

    [Fact]
    public void Text_refuses_invalid_utf8()
    {
        Assert.False(SaslCredentials.TryDecodeText(Convert.ToBase64String([0x61, 0xFF, 0x62]), out _));
        Assert.False(SaslCredentials.TryDecodeText(Convert.ToBase64String([0xED, 0xA0, 0x80]), out _)); // a UTF-16 surrogate
    }
}
