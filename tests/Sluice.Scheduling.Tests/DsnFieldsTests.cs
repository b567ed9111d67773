// What a DSN echoes of the client's ENVID and ORCPT: readable when printable ASCII, encoded
// otherwise, so a decoded value can never break a header line (RFC 3464 §2.2.1, §2.3.1, §2.3.2).
using Sluice.Scheduling.Bounces;

namespace Sluice.Scheduling.Tests;

public sealed class DsnFieldsTests
{
    [Theory]
    [InlineData("QQ314159", "QQ314159")]
    [InlineData("id with space", "id with space")]
    [InlineData("x\r\nBcc: evil@x", "x+0D+0ABcc:+20evil@x")]
    public void Envelope_id(string envid, string field) => Assert.Equal(field, DsnFields.EnvelopeId(envid));

    [Theory]
    [InlineData("rfc822;bob@example.com", "rfc822;bob@example.com")]
    [InlineData("rfc822;用户@example.com", @"utf-8;\x{7528}\x{6237}@example.com")]
    [InlineData("x400;a\nb", "x400;a+0Ab")]
    public void Original_recipient(string orcpt, string field) => Assert.Equal(field, DsnFields.OriginalRecipient(orcpt));

    [Theory]
    [InlineData("bob@example.com", "rfc822; bob@example.com")]
    [InlineData("用户@example.com", @"utf-8; \x{7528}\x{6237}@example.com")]
    public void Final_recipient(string address, string field) => Assert.Equal(field, DsnFields.FinalRecipient(address));
}
