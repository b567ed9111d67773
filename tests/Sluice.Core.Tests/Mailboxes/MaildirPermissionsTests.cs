// Mailboxes.Mode as an operator writes it: octal permission bits for Maildir directories, the owner
// keeping rwx (or the server could not deliver), no set-id or sticky bits.
using Sluice.Core.Mailboxes;

namespace Sluice.Core.Tests.Mailboxes;

public sealed class MaildirPermissionsTests
{
    [Theory]
    [InlineData("0750", 0x1E8)] // 0750
    [InlineData("750", 0x1E8)]
    [InlineData("0700", 0x1C0)]
    [InlineData("0777", 0x1FF)]
    public void A_mode_the_owner_can_deliver_into_is_taken(string text, int bits)
    {
        Assert.True(MaildirPermissions.TryParseMode(text, out var mode));
        Assert.Equal((UnixFileMode)bits, mode);
    }

    [Theory]
    [InlineData("0644")] // no x for the owner: the server could not enter its own directories
    [InlineData("0500")]
    [InlineData("1777")] // sticky
    [InlineData("2750")] // setgid
    [InlineData("07500")]
    [InlineData("75")]
    [InlineData("0758")]
    [InlineData("rwx")]
    public void Any_other_mode_is_refused(string text) => Assert.False(MaildirPermissions.TryParseMode(text, out _));
}
