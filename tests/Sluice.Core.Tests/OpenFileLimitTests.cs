// `sluice serve` raises the soft open-files limit to the hard one at start, since every SMTP
// session holds a descriptor; this checks the raise really takes effect in the process.
using Sluice.Core.Configuration;
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

public sealed class SessionCapsTests
{
    private static readonly OpenFileLimit.Limits Limit = new(20_000, 20_000, null);

    private static SluiceOptions Options(int remoteConcurrency, int maxConnections)
    {
        var options = new SluiceOptions();
        options.Smtp.MaxConnections = maxConnections;
        options.Channels.Single(c => c.Transport == ChannelOptions.SmtpTransport).Concurrency = remoteConcurrency;
        return options;
    }

    [Fact]
    public void Outbound_concurrency_above_the_limit_is_capped_and_the_log_says_so()
    {
        var options = Options(remoteConcurrency: 10_000, maxConnections: 100);
        options.Queue.Count = 4; // × 4 queues = 40,000 outbound
        var (caps, line) = SessionCaps.Plan(Limit, 50, options, dnsSockets: 256);
        var budget = (int)Limit.SessionEstimate(50) - 256 - 100; // what DNS and inbound sessions may hold is kept back
        Assert.Equal(budget, caps.Outbound);
        Assert.Equal(int.MaxValue, caps.Inbound);
        Assert.Contains($"remote delivery is configured for 40000 simultaneous sessions (smtp Channels[].Concurrency × 4 queues), so the open-files limit caps outbound connections at {budget}", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Within_the_limit_only_the_descriptor_budget_bounds_outbound_connections()
    {
        // Bounded even so: a reload may raise Channels[].Concurrency past what the descriptors allow.
        var (caps, line) = SessionCaps.Plan(Limit, 50, Options(remoteConcurrency: 100, maxConnections: 1000), dnsSockets: 256);
        Assert.Equal(int.MaxValue, caps.Inbound);
        Assert.Equal((int)Limit.SessionEstimate(50) - 256 - 1000, caps.Outbound);
        Assert.DoesNotContain("caps", line, StringComparison.Ordinal);
    }

    [Fact]
    public void With_delivery_workers_each_worker_has_its_own_budget_and_the_server_none()
    {
        var options = Options(remoteConcurrency: 10_000, maxConnections: 100);
        options.Delivery.Workers = 3;
        var (caps, line) = SessionCaps.Plan(Limit, 50, options, dnsSockets: 256);
        var each = SessionCaps.WorkerOutbound(Limit, 30, dnsSockets: 256);
        Assert.Equal(20_000 - 30 - OpenFileLimit.Reserve - 256, each);
        Assert.Equal(0, caps.Outbound);
        Assert.Contains($"remote delivery runs in 3 worker processes (Delivery.Workers), each with its own open-files limit: at most ~{each} outbound connections each, ~{3 * each} in all", line, StringComparison.Ordinal);
        Assert.DoesNotContain("caps outbound", line, StringComparison.Ordinal);
    }

    [Fact]
    public void A_worker_without_a_limit_to_read_is_not_capped() =>
        Assert.Equal(int.MaxValue, SessionCaps.WorkerOutbound(null, 30, dnsSockets: 256));

    [Fact]
    public void Both_ways_together_past_the_limit_is_said_plainly()
    {
        var (caps, line) = SessionCaps.Plan(Limit, 50, Options(remoteConcurrency: 8000, maxConnections: 15_000), dnsSockets: 256);
        Assert.Equal(int.MaxValue, caps.Inbound);
        Assert.Contains("Smtp.MaxConnections (15000) and remote delivery's 8000 sessions together exceed it", line, StringComparison.Ordinal);
    }
}
