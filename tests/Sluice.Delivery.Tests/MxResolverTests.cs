// MX resolution against a real DNS server on loopback: order, implicit MX, and the DNS answers that
// bounce (NXDOMAIN, null MX) or defer (SERVFAIL), each with its RFC 3463 status.
using System.Net;
using Sluice.Core.Configuration;
using Sluice.Core.IO;
using Sluice.Delivery.Smtp;
using Sluice.Testing;

namespace Sluice.Delivery.Tests;

[Collection(DnsCollection.Name)]
public sealed class MxResolverTests(TestDns dns)
{
    private readonly MxResolver _resolver = dns.Resolver();

    [Fact]
    public async Task Hosts_come_in_order_of_preference_whatever_the_order_served()
    {
        var lookup = await _resolver.ResolveAsync("pref.test", CancellationToken.None);
        Assert.Equal(["first.pref.test", "second.pref.test"], lookup.Hosts.Select(h => h.Name));
        Assert.Equal([TestDns.First], lookup.Hosts[0].Addresses);
    }

    [Fact]
    public async Task Hosts_of_equal_preference_are_tried_in_random_order()
    {
        var firsts = new HashSet<string>();
        for (int i = 0; i < 64 && firsts.Count < 2; i++)
            firsts.Add((await _resolver.ResolveAsync("equal.test", CancellationToken.None)).Hosts[0].Name);
        Assert.Equal(["a.equal.test", "b.equal.test"], firsts.Order());
    }

    [Fact]
    public async Task A_domain_without_MX_is_its_own_implicit_MX()
    {
        var lookup = await _resolver.ResolveAsync("implicit.test", CancellationToken.None);
        var host = Assert.Single(lookup.Hosts);
        Assert.Equal("implicit.test", host.Name);
        Assert.Equal([TestDns.Implicit], host.Addresses);
    }

    [Fact]
    public async Task IPv6_and_IPv4_addresses_are_both_listed_IPv6_first()
    {
        var lookup = await _resolver.ResolveAsync("dual.test", CancellationToken.None);
        Assert.Equal([IPAddress.IPv6Loopback, TestDns.DualV4], Assert.Single(lookup.Hosts).Addresses);
    }

    [Theory]
    [InlineData("nx.test", "550 5.1.2")]
    [InlineData("nullmx.test", "556 5.1.10")]
    [InlineData("noaddress.test", "550 5.1.2")]
    [InlineData("nohost.test", "554 5.4.4")]
    public async Task Answers_that_say_the_domain_takes_no_mail_are_permanent(string domain, string status)
    {
        var lookup = await _resolver.ResolveAsync(domain, CancellationToken.None);
        Assert.Empty(lookup.Hosts);
        Assert.True(lookup.Permanent, lookup.Reply);
        Assert.StartsWith(status, lookup.Reply, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("servfail.test")]
    [InlineData("brokenmx.test")]
    public async Task SERVFAIL_is_temporary_4_4_3(string domain)
    {
        var lookup = await _resolver.ResolveAsync(domain, CancellationToken.None);
        Assert.Empty(lookup.Hosts);
        Assert.False(lookup.Permanent);
        Assert.StartsWith("451 4.4.3", lookup.Reply, StringComparison.Ordinal);
        Assert.Contains("ServerFailure", lookup.Reply, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_resolver_that_does_not_answer_is_temporary_4_4_3()
    {
        // A UDP port with nothing behind it on loopback: the query times out (or is refused by ICMP).
        using var silent = new System.Net.Sockets.UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var resolver = new MxResolver(new DnsOptions { Servers = [$"127.0.0.1:{((IPEndPoint)silent.Client.LocalEndPoint!).Port}"], Timeout = TimeSpan.FromMilliseconds(300) });
        var lookup = await resolver.ResolveAsync("pref.test", CancellationToken.None);
        Assert.False(lookup.Permanent);
        Assert.StartsWith("451 4.4.3", lookup.Reply, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Answers_are_kept_for_their_TTL_so_a_resolver_gone_meanwhile_is_not_asked()
    {
        var own = await UnboundServer.StartAsync(["cached.test. 300 IN MX 10 mx.cached.test.", "mx.cached.test. 300 IN A 127.0.0.30"], []);
        // A timeout a loaded machine's first answer fits in; the cached answer later is not asked for at all.
        var resolver = new MxResolver(new DnsOptions { Servers = [own.Address], Timeout = TimeSpan.FromSeconds(5) });
        Assert.Single((await resolver.ResolveAsync("cached.test", CancellationToken.None)).Hosts);
        await own.DisposeAsync();
        var again = await resolver.ResolveAsync("cached.test", CancellationToken.None);
        Assert.Equal("mx.cached.test", Assert.Single(again.Hosts).Name);
    }

    [Fact]
    public async Task A_query_takes_a_descriptor_slot_and_waits_for_one_when_the_budget_is_spent()
    {
        var budget = SessionBudget.OutboundOnly(1);
        var resolver = new MxResolver(new DnsOptions { Servers = [dns.Server.Address], Timeout = TimeSpan.FromSeconds(5) }, budget);
        Assert.True(budget.TryTakeOutbound()); // a connection holds the only slot
        var lookup = resolver.ResolveAsync("pref.test", CancellationToken.None);
        Assert.True(SpinWait.SpinUntil(() => budget.OutboundWaiting, TimeSpan.FromSeconds(20)), "the query did not wait for a slot");
        Assert.False(lookup.IsCompleted);

        budget.ReleaseOutbound();
        Assert.Equal(2, (await lookup.WaitAsync(TimeSpan.FromSeconds(20))).Hosts.Count);
        Assert.Equal(0, budget.Outbound); // the query's socket gave its slot back
    }
}
