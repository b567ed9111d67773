// Remote delivery through MX, end to end over real sockets: the agent asks the loopback DNS server,
// connects to sinks on 127.0.0.x (and ::1) in MX order, and maps each failure to its DSN status.
using System.Net;
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Core.Mail;
using Sluice.Delivery.Smtp;

namespace Sluice.Delivery.Tests;

[Collection(DnsCollection.Name)]
public sealed class MxDeliveryTests(TestDns dns)
{
    private static readonly byte[] Message = Encoding.ASCII.GetBytes("Subject: mx\r\nFrom: <s@client.test>\r\n\r\nbody\r\n");

    private SmtpRelayAgent Agent(int port, Dictionary<string, string>? routes = null, TimeSpan? greetingTimeout = null, OwnAddresses? self = null) =>
        new(new SmtpRoutes(routes ?? []), dns.Resolver(), "client.test", new DeliveryOptions
        {
            Port = port, ConnectTimeout = TimeSpan.FromSeconds(2), CommandTimeout = TimeSpan.FromSeconds(10), GreetingTimeout = greetingTimeout ?? TimeSpan.FromSeconds(10),
        }, TimeProvider.System, self: self);

    private static Task<RecipientResult[]> Deliver(SmtpRelayAgent agent, string domain) =>
        agent.DeliverAsync(new DeliveryRequest("m1", "s@client.test", [$"rcpt@{domain}"], domain, Message), CancellationToken.None);

    [Fact]
    public async Task Mail_goes_to_the_most_preferred_MX()
    {
        await using var sinks = await SinksOnOnePort.StartAsync(TestDns.First, TestDns.Second);
        await using var agent = Agent(sinks.Port);
        var result = Assert.Single(await Deliver(agent, "pref.test"));
        Assert.Equal(DeliveryStatus.Delivered, result.Status);
        Assert.Equal("rcpt@pref.test", Assert.Single(Assert.Single(sinks[TestDns.First].Messages).Recipients));
        Assert.Empty(sinks[TestDns.Second].Messages);
    }

    [Fact]
    public async Task A_refused_connection_moves_on_to_the_next_MX()
    {
        // Nothing listens on first.pref.test's address: the kernel refuses, the second MX takes the mail.
        await using var sinks = await SinksOnOnePort.StartAsync(TestDns.Second);
        await using var agent = Agent(sinks.Port);
        var result = Assert.Single(await Deliver(agent, "pref.test"));
        Assert.Equal(DeliveryStatus.Delivered, result.Status);
        Assert.Contains("second.pref.test", result.Text, StringComparison.Ordinal);
        Assert.Single(sinks[TestDns.Second].Messages);
    }

    [Fact]
    public async Task A_refusal_carries_the_reply_and_the_name_of_the_MX_host_that_gave_it()
    {
        await using var sinks = await SinksOnOnePort.StartAsync(TestDns.First);
        sinks[TestDns.First].RcptReply = rcpt => $"550 5.1.1 <{rcpt}>: no such user";
        await using var agent = Agent(sinks.Port);
        var result = Assert.Single(await Deliver(agent, "pref.test"));
        Assert.Equal(DeliveryStatus.Failed, result.Status);
        var remote = Assert.IsType<RemoteReply>(result.Remote);
        Assert.Equal("first.pref.test", remote.Mta); // RFC 3464 §2.3.5: the host's name, not its address
        Assert.Equal("550 5.1.1 <rcpt@pref.test>: no such user", remote.Reply);
        Assert.Equal($"first.pref.test[{TestDns.First}]:{sinks.Port} said: 550 5.1.1 <rcpt@pref.test>: no such user", result.Text);
    }

    [Fact]
    public async Task A_4xx_greeting_moves_on_to_the_next_MX()
    {
        await using var sinks = await SinksOnOnePort.StartAsync(TestDns.First, TestDns.Second);
        sinks[TestDns.First].Greeting = "421 4.3.2 too busy";
        await using var agent = Agent(sinks.Port);
        var result = Assert.Single(await Deliver(agent, "pref.test"));
        Assert.Equal(DeliveryStatus.Delivered, result.Status);
        Assert.Equal(1, sinks[TestDns.First].Sessions.Total);
        Assert.Empty(sinks[TestDns.First].Messages);
        Assert.Single(sinks[TestDns.Second].Messages);
    }

    [Fact]
    public async Task A_silent_MX_times_out_at_the_greeting_and_the_next_MX_takes_the_mail()
    {
        await using var sinks = await SinksOnOnePort.StartAsync(TestDns.First, TestDns.Second);
        sinks[TestDns.First].Silent = true;
        await using var agent = Agent(sinks.Port, greetingTimeout: TimeSpan.FromSeconds(1));
        var result = Assert.Single(await Deliver(agent, "pref.test"));
        Assert.Equal(DeliveryStatus.Delivered, result.Status);
        Assert.Equal(1, sinks[TestDns.First].Sessions.Total);
        Assert.Single(sinks[TestDns.Second].Messages);
    }

    [Fact]
    public async Task A_silent_MX_alone_defers_with_the_timeout_named()
    {
        await using var sinks = await SinksOnOnePort.StartAsync(TestDns.First);
        sinks[TestDns.First].Silent = true;
        await using var agent = Agent(sinks.Port, greetingTimeout: TimeSpan.FromSeconds(1));
        var result = Assert.Single(await Deliver(agent, "pref.test"));
        Assert.Equal(DeliveryStatus.Deferred, result.Status);
        Assert.True(result.DestinationUnavailable);
        Assert.Contains("first.pref.test[127.0.0.21]", result.Text, StringComparison.Ordinal);
        Assert.Contains("no greeting within 1s", result.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_MX_failing_defers_as_the_destination_being_unavailable()
    {
        await using var sinks = await SinksOnOnePort.StartAsync(TestDns.Second);
        sinks[TestDns.Second].Greeting = "421 4.3.2 too busy";
        await using var agent = Agent(sinks.Port);
        var result = Assert.Single(await Deliver(agent, "pref.test"));
        Assert.Equal(DeliveryStatus.Deferred, result.Status);
        Assert.True(result.DestinationUnavailable);
        Assert.Contains("first.pref.test[127.0.0.21]", result.Text, StringComparison.Ordinal);
        Assert.Contains("421 4.3.2 too busy", result.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_domain_without_MX_gets_its_mail_at_its_own_address()
    {
        await using var sinks = await SinksOnOnePort.StartAsync(TestDns.Implicit);
        await using var agent = Agent(sinks.Port);
        Assert.Equal(DeliveryStatus.Delivered, Assert.Single(await Deliver(agent, "implicit.test")).Status);
        Assert.Single(sinks[TestDns.Implicit].Messages);
    }

    [Fact]
    public async Task IPv6_is_tried_first_and_IPv4_when_IPv6_refuses()
    {
        await using (var v6 = await SinksOnOnePort.StartAsync(IPAddress.IPv6Loopback))
        await using (var agent = Agent(v6.Port))
        {
            Assert.Equal(DeliveryStatus.Delivered, Assert.Single(await Deliver(agent, "dual.test")).Status);
            Assert.Single(v6[IPAddress.IPv6Loopback].Messages);
        }
        await using var v4 = await SinksOnOnePort.StartAsync(TestDns.DualV4);
        await using var fallback = Agent(v4.Port);
        var result = Assert.Single(await Deliver(fallback, "dual.test"));
        Assert.Equal(DeliveryStatus.Delivered, result.Status);
        Assert.Single(v4[TestDns.DualV4].Messages);
    }

    [Theory]
    [InlineData("nullmx.test", "556 5.1.10")]
    [InlineData("nx.test", "550 5.1.2")]
    public async Task A_domain_that_takes_no_mail_bounces(string domain, string status)
    {
        await using var agent = Agent(25);
        var result = Assert.Single(await Deliver(agent, domain));
        Assert.Equal(DeliveryStatus.Failed, result.Status);
        Assert.StartsWith(status, result.Text, StringComparison.Ordinal);
        Assert.Null(result.Remote); // our finding, not a reply: a DSN reports it as ours
    }

    [Fact]
    public async Task SERVFAIL_defers_with_4_4_3_and_backs_the_destination_off()
    {
        await using var agent = Agent(25);
        var result = Assert.Single(await Deliver(agent, "servfail.test"));
        Assert.Equal(DeliveryStatus.Deferred, result.Status);
        Assert.True(result.DestinationUnavailable);
        Assert.StartsWith("451 4.4.3", result.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_best_MX_being_this_server_bounces_as_a_loop()
    {
        await using var sinks = await SinksOnOnePort.StartAsync(TestDns.First, TestDns.Second);
        await using var agent = Agent(sinks.Port, self: new OwnAddresses("mx.sluice.test", [new IPEndPoint(TestDns.First, sinks.Port)]));
        var result = Assert.Single(await Deliver(agent, "pref.test"));
        Assert.Equal(DeliveryStatus.Failed, result.Status);
        Assert.StartsWith("554 5.4.6 mail for pref.test loops back to myself", result.Text, StringComparison.Ordinal);
        Assert.Equal(0, sinks[TestDns.First].Sessions.Total + sinks[TestDns.Second].Sessions.Total);
    }

    [Fact]
    public async Task An_MX_named_by_our_hostname_is_this_server()
    {
        await using var agent = Agent(25, self: new OwnAddresses("FIRST.pref.test", []));
        var result = Assert.Single(await Deliver(agent, "pref.test"));
        Assert.StartsWith("554 5.4.6", result.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_backup_MX_tries_only_the_more_preferred_hosts()
    {
        // We are second.pref.test: when first.pref.test turns us away the mail waits, it is never sent to ourselves.
        await using var sinks = await SinksOnOnePort.StartAsync(TestDns.First, TestDns.Second);
        sinks[TestDns.First].Greeting = "421 4.3.2 too busy";
        await using var agent = Agent(sinks.Port, self: new OwnAddresses("mx.sluice.test", [new IPEndPoint(TestDns.Second, sinks.Port)]));
        var result = Assert.Single(await Deliver(agent, "pref.test"));
        Assert.Equal(DeliveryStatus.Deferred, result.Status);
        Assert.Equal(0, sinks[TestDns.Second].Sessions.Total);

        sinks[TestDns.First].Greeting = "220 first.pref.test ESMTP";
        Assert.Equal(DeliveryStatus.Delivered, Assert.Single(await Deliver(agent, "pref.test")).Status);
        Assert.Single(sinks[TestDns.First].Messages);
    }

    [Fact]
    public async Task A_route_to_this_server_is_followed()
    {
        await using var sinks = await SinksOnOnePort.StartAsync(TestDns.First);
        await using var agent = Agent(sinks.Port, new() { ["pref.test"] = $"{TestDns.First}:{sinks.Port}" },
            self: new OwnAddresses("mx.sluice.test", [new IPEndPoint(TestDns.First, sinks.Port)]));
        Assert.Equal(DeliveryStatus.Delivered, Assert.Single(await Deliver(agent, "pref.test")).Status);
    }

    [Fact]
    public async Task A_route_wins_over_MX()
    {
        await using var sinks = await SinksOnOnePort.StartAsync(TestDns.First, IPAddress.Loopback);
        await using var agent = Agent(sinks.Port, new() { ["pref.test"] = $"127.0.0.1:{sinks.Port}" });
        Assert.Equal(DeliveryStatus.Delivered, Assert.Single(await Deliver(agent, "pref.test")).Status);
        Assert.Single(sinks[IPAddress.Loopback].Messages);
        Assert.Empty(sinks[TestDns.First].Messages);
    }
}
