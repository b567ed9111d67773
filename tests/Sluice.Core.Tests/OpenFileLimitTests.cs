// `sluice serve` raises the soft open-files limit to the hard one at start, since every SMTP
// session holds a descriptor; this checks the raise really takes effect in the process.
using Sluice.Core.IO;

namespace Sluice.Core.Tests;

public sealed class OpenFileLimitTests
{
    [Fact]
    public void Raise_sets_the_soft_limit_to_the_hard_limit()
    {
        if (!OperatingSystem.IsLinux()) return;
        var before = Assert.NotNull(OpenFileLimit.Read());
        Assert.Null(before.Error);
        // Lower the soft limit first (leaving room for what is open) so the raise has work to do.
        var lower = (ulong)Math.Max(1024, OpenFileLimit.OpenNow() + 256);
        if (lower < before.Hard) Assert.True(OpenFileLimit.TrySetSoft(lower));

        var raised = Assert.NotNull(OpenFileLimit.Raise());

        Assert.Null(raised.Error);
        Assert.True(raised.Raised);
        var now = Assert.NotNull(OpenFileLimit.Read());
        Assert.Equal(now.Hard, now.Soft);
        Assert.Equal(before.Hard, raised.Hard);
        Assert.Equal(now.Soft, raised.Soft);
    }

    [Fact]
    public void The_session_estimate_keeps_back_what_is_open_and_a_reserve()
    {
        var limits = new OpenFileLimit.Limits(20_000, 20_000, null);
        Assert.Equal(20_000 - 40 - OpenFileLimit.Reserve, limits.SessionEstimate(40));
        Assert.Equal(0, new OpenFileLimit.Limits(50, 50, null).SessionEstimate(40));
    }
}
