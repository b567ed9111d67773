// The outbound connection budget the open-files limit sets: past it a delivery waits for a
// connection to close (a finished one, or an idle pooled one closed for it) instead of failing.
using System.Text;
using Sluice.Core.Configuration;
using Sluice.Core.IO;
using Sluice.Core.Mail;
using Sluice.Delivery.Smtp;
using Sluice.Testing;

namespace Sluice.Delivery.Tests;

public sealed class ConnectionBudgetTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly SmtpSink _first = new();
    private readonly SmtpSink _second = new();

    private SmtpRelayAgent Agent(int maxConnections) => new(
        new SmtpRoutes(new Dictionary<string, string> { ["a.test"] = $"127.0.0.1:{_first.Port}", ["b.test"] = $"127.0.0.1:{_second.Port}" }),
        new MxResolver(new DnsOptions { Servers = ["127.0.0.1:1"] }), "client.test",
        new DeliveryOptions { IdleTimeout = TimeSpan.FromMinutes(10) }, TimeProvider.System, SessionBudget.OutboundOnly(maxConnections));

    private static async Task Delivered(SmtpRelayAgent agent, string domain, string id)
    {
        var message = Encoding.ASCII.GetBytes($"Subject: {id}\r\n\r\nbody\r\n");
        var result = await agent.DeliverAsync(new DeliveryRequest(id, "s@client.test", [$"r@{domain}"], domain, message), CancellationToken.None).WaitAsync(Patience);
        Assert.Equal(DeliveryStatus.Delivered, Assert.Single(result).Status);
    }

    [Fact]
    public async Task Past_the_budget_a_delivery_waits_for_a_connection_to_close_instead_of_failing()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _first.BeforeDataReply = _ => release.Task;
        await using var agent = Agent(maxConnections: 1);
        var held = Delivered(agent, "a.test", "m1");
        await _first.Sessions.WaitForAsync(1, Patience);
        var waiting = Delivered(agent, "a.test", "m2");
        Assert.True(SpinWait.SpinUntil(() => agent.WaitingForConnection, Patience));
        Assert.Equal(1, _first.Sessions.Total); // the second delivery has not connected

        release.SetResult();
        await held;
        await waiting;
        Assert.Equal(2, _first.Messages.Count);
        // The finished connection was closed for the waiting delivery rather than kept idle.
        Assert.Equal(2, _first.Sessions.Total);
    }

    [Fact]
    public async Task An_idle_pooled_connection_is_closed_to_make_room()
    {
        await using var agent = Agent(maxConnections: 1);
        await Delivered(agent, "a.test", "m1"); // its connection stays idle in the pool (IdleTimeout 10 minutes)
        await Delivered(agent, "b.test", "m2");
        Assert.Single(_second.Messages);
        await _first.Sessions.WaitForAsync(0, Patience);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _first.DisposeAsync();
        await _second.DisposeAsync();
    }
}
