// The open-files budget shared both ways, in the real process under a small RLIMIT_NOFILE (prlimit): a
// fan-out takes what inbound sessions do not use, past it deliveries wait (no deferral, no failure),
// and the floor kept for new inbound sessions still takes SMTP clients while the one after gets 421 4.3.2;
// once idle, pooled connections give their slots back to clients that need them.
using System.Text.RegularExpressions;
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed partial class SessionBudgetTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task A_fan_out_takes_what_inbound_does_not_use_and_the_inbound_floor_still_takes_clients()
    {
        const int limit = 1500, domains = 1300, perMessage = 650;
        await using var dns = await FanOut.StartDnsAsync(domains);
        await using var mx = new SmtpSink();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        mx.BeforeDataReply = _ => release.Task;
        // Smtp.MaxConnections as embedded (20,000): before the shared budget, half of it stayed kept for inbound sessions.
        await using var sluice = await Instance.StartAsync(limit, c =>
        {
            FanOut.Configure(c, dns, new { Port = mx.Port, IdleTimeout = "5m" }, domains);
            Instance.Smtp(c)["StressCommandTimeout"] = "5m"; // idle clients are not cut to make room either
        });
        var limits = sluice.Process.Log.Single(l => l.Contains($"limits: open files {limit} (hard {limit})", StringComparison.Ordinal));
        var shared = SharedLine().Match(limits);
        Assert.True(shared.Success, limits);
        var (outboundMax, inboundFloor) = (int.Parse(shared.Groups[1].Value), int.Parse(shared.Groups[2].Value));
        Assert.True(outboundMax > limit / 2, limits);
        Assert.True(outboundMax < domains, $"{domains} deliveries do not fill {outboundMax} slots");

        for (var first = 0; first < domains; first += perMessage)
            await FanOut.SendAsync(sluice, [.. Enumerable.Range(first, perMessage).Select(FanOut.Recipient)]);

        // Every outbound slot is held at the sink; the other deliveries wait for one.
        await mx.Sessions.WaitForAsync(outboundMax, Wait);
        var clients = new List<SmtpWire>();
        try
        {
            for (var i = 0; i < inboundFloor; i++) clients.Add(await SmtpWire.OpenAsync(sluice.Process.SmtpPort));
            await using (var past = await SmtpWire.ConnectAsync(sluice.Process.SmtpPort))
            {
                Assert.StartsWith("421 4.3.2 mx.sluice.test Error: all sessions this server's open files allow are in use", await past.ReadReplyAsync(), StringComparison.Ordinal);
                Assert.Equal("", await past.ReadToCloseAsync());
            }
            // A client inside the floor has a working session: it is offered a transaction.
            Assert.StartsWith("250", await clients[0].CommandAsync("EHLO client.test"), StringComparison.Ordinal);
            Assert.Equal(outboundMax, mx.Sessions.Max);
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }

        release.SetResult();
        static bool Success(string line) => line.Contains(": success: ", StringComparison.Ordinal);
        await sluice.Process.WaitForLogAsync(l => Success(l) && sluice.Process.Log.Count(Success) >= domains, Wait);
        Assert.Equal(domains, mx.Messages.Sum(m => m.Recipients.Count));
        Assert.Equal(outboundMax, mx.Sessions.Max);
        Assert.DoesNotContain(sluice.Process.Log, l => l.Contains(": deferral: ", StringComparison.Ordinal) || l.Contains(": failure: ", StringComparison.Ordinal));

        // The connections now idle in the pool (for 5 minutes) still hold their slots: clients take what is free,
        // the next is turned away and has an idle connection closed, so a client after it is served.
        clients.Clear();
        try
        {
            for (var refused = false; !refused;)
            {
                var wire = await SmtpWire.ConnectAsync(sluice.Process.SmtpPort);
                var greeting = await wire.ReadReplyAsync();
                if (greeting.StartsWith("220 ", StringComparison.Ordinal))
                {
                    clients.Add(wire);
                    Assert.True(clients.Count <= limit, $"{clients.Count} clients served under a limit of {limit}");
                    continue;
                }
                Assert.StartsWith("421 4.3.2 ", greeting, StringComparison.Ordinal);
                await wire.DisposeAsync();
                refused = true;
            }
            Assert.True(clients.Count >= inboundFloor, $"{clients.Count} clients served");
            clients.Add(await OpenOnceAnIdleConnectionIsClosedAsync(sluice.Process.SmtpPort));
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
        Assert.Equal(0, await sluice.Process.StopAsync());
    }

    /// <summary>The idle connection closed for a refused client is gone after its QUIT; until then a client is refused (and closes another).</summary>
    private static async Task<SmtpWire> OpenOnceAnIdleConnectionIsClosedAsync(int port)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var wire = await SmtpWire.ConnectAsync(port);
            var greeting = await wire.ReadReplyAsync();
            if (greeting.StartsWith("220 ", StringComparison.Ordinal)) return wire;
            await wire.DisposeAsync();
            Assert.True(DateTime.UtcNow < deadline, $"still refused: {greeting}");
        }
    }

    [GeneratedRegex(@"shared: outbound connections and DNS queries up to (\d+) while inbound sessions leave them room, (\d+) kept for new inbound sessions")]
    private static partial Regex SharedLine();
}
