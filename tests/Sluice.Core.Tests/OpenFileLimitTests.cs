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

    private static SluiceOptions Options(int remoteConcurrency, int? maxConnections = null)
    {
        var options = new SluiceOptions();
        options.Queue.Count = 4; // as bench/outbound.sh runs it: the 24,000 remote sessions are 6,000 × 4 queues
        if (maxConnections is int max) options.Smtp.MaxConnections = max;
        options.Channels.Single(c => c.Transport == ChannelOptions.SmtpTransport).Concurrency = remoteConcurrency;
        return options;
    }

    /// <summary>The sockets' share: the estimate less one file per Maildir delivery (64 × the 4 queues above); DNS queries take outbound slots.</summary>
    private static readonly int Shared = (int)Limit.SessionEstimate(50) - 64 * 4;

    [Fact]
    public void With_the_embedded_defaults_outbound_may_take_all_but_the_inbound_floor()
    {
        // The case: Smtp.MaxConnections as embedded (20,000) and 6,000 × 4 queues = 24,000 remote sessions.
        var (budget, line) = SessionCaps.Plan(Limit, 50, Options(remoteConcurrency: 6000));
        Assert.Equal(Shared, budget.Total);
        Assert.Equal(SessionBudget.FloorFor(Shared), budget.InboundFloor);
        Assert.Equal(Shared - budget.InboundFloor, budget.OutboundMax);
        Assert.True(budget.OutboundMax >= 19_000, $"outbound at most {budget.OutboundMax}");
        Assert.Contains($"shared: outbound connections and DNS queries up to {budget.OutboundMax} while inbound sessions leave them room, "
            + $"{budget.InboundFloor} kept for new inbound sessions and {budget.OutboundFloor} for delivery", line, StringComparison.Ordinal);
        Assert.Contains("remote delivery is configured for 24000 simultaneous sessions (smtp Channels[].Concurrency × 4 queues), more than this process's open files allow: "
            + $"deliveries past {budget.OutboundMax} wait for a connection to close (Delivery.Workers 2 would give each worker process a limit of its own)", line, StringComparison.Ordinal);
        Assert.Contains($"Smtp.MaxConnections (20000) is above what the open files allow, so inbound sessions are capped at {budget.InboundMax}", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Within_the_limit_nothing_is_said_to_wait()
    {
        var (budget, line) = SessionCaps.Plan(Limit, 50, Options(remoteConcurrency: 100, maxConnections: 1000));
        Assert.Equal(Shared - SessionBudget.FloorFor(Shared), budget.InboundMax);
        Assert.DoesNotContain("wait", line, StringComparison.Ordinal);
        Assert.DoesNotContain("capped", line, StringComparison.Ordinal);
    }

    [Fact]
    public void The_inbound_floor_is_no_more_than_inbound_may_use()
    {
        var (budget, _) = SessionCaps.Plan(Limit, 50, Options(remoteConcurrency: 100, maxConnections: 40));
        Assert.Equal(40, budget.InboundFloor);
        Assert.Equal(Shared - 40, budget.OutboundMax);
    }

    [Fact]
    public void With_delivery_workers_each_worker_has_its_own_budget_and_the_servers_is_all_inbound()
    {
        var options = Options(remoteConcurrency: 10_000, maxConnections: 100);
        options.Delivery.Workers = 3;
        var (budget, line) = SessionCaps.Plan(Limit, 50, options);
        var each = SessionCaps.WorkerOutbound(Limit, 30);
        Assert.Equal(20_000 - 30 - OpenFileLimit.Reserve, each);
        Assert.Equal((Shared, 0, 0), (budget.InboundMax, budget.InboundFloor, budget.OutboundFloor)); // Maildir delivery stays in the server
        Assert.Contains($"remote delivery runs in 3 worker processes (Delivery.Workers), each with its own open-files limit: at most ~{each} outbound connections each, ~{3 * each} in all", line, StringComparison.Ordinal);
        Assert.DoesNotContain("wait", line, StringComparison.Ordinal);
    }

    [Fact]
    public void A_worker_without_a_limit_to_read_is_not_capped() =>
        Assert.Equal(int.MaxValue, SessionCaps.WorkerOutbound(null, 30));
}
