// Connection limits and timeouts of the built server over real sockets: per-client and total caps
// answer 421 and close, hundreds of idle sessions do not slow a real client, idle ones are cut.
using System.Diagnostics;
using MailKit.Net.Smtp;
using MimeKit;
using Xunit.Abstractions;

namespace Sluice.EndToEnd;

public sealed class ConnectionLimitTests(ITestOutputHelper output)
{
    private static async Task<List<SmtpWire>> OpenManyAsync(int port, int count) =>
        [.. await Task.WhenAll(Enumerable.Range(0, count).Select(_ => SmtpWire.OpenAsync(port)))];

    private static async Task CloseAllAsync(IEnumerable<SmtpWire> wires)
    {
        foreach (var w in wires) await w.DisposeAsync();
    }

    [Fact]
    public async Task Per_client_limit_refuses_the_fourth_connection_and_a_freed_slot_is_usable_again()
    {
        await using var sluice = await Instance.StartAsync(c =>
        {
            Instance.Smtp(c)["MaxConnectionsPerClient"] = 3;
            Instance.Smtp(c)["RelayNetworks"] = Array.Empty<string>(); // loopback is counted like any client
        });
        var held = await OpenManyAsync(sluice.Process.SmtpPort, 3);
        try
        {
            await using (var fourth = await SmtpWire.ConnectAsync(sluice.Process.SmtpPort))
            {
                var refusal = await fourth.ReadReplyAsync();
                Assert.StartsWith("421 4.7.0 mx.sluice.test ", refusal, StringComparison.Ordinal);
                Assert.Contains("too many connections from 127.0.0.1", refusal, StringComparison.Ordinal);
                Assert.Equal("", await fourth.ReadToCloseAsync());
            }
            await sluice.WaitForLogAsync("too many connections from 127.0.0.1");

            // The held sessions are unaffected; one leaves, and its slot is taken by a newcomer.
            Assert.StartsWith("221 ", await held[0].CommandAsync("QUIT"), StringComparison.Ordinal);
            Assert.Equal("", await held[0].ReadToCloseAsync());
            held[0] = await OpenAfterSlotFreedAsync(sluice.Process.SmtpPort);
            Assert.StartsWith("250-mx.sluice.test", await held[0].CommandAsync("EHLO again.client.test"), StringComparison.Ordinal);
            Assert.Equal("250 2.0.0 Ok", await held[1].CommandAsync("NOOP"));
        }
        finally
        {
            await CloseAllAsync(held);
        }
    }

    /// <summary>
    /// The server counts a session out only after it has closed the socket, so a client reconnecting the
    /// instant it sees the close may still be counted against the old one (the test below pins that
    /// down); here it retries on 421 for a while.
    /// </summary>
    private async Task<SmtpWire> OpenAfterSlotFreedAsync(int port)
    {
        var deadline = Stopwatch.StartNew();
        for (var refused = 0; ; refused++)
        {
            var wire = await SmtpWire.ConnectAsync(port);
            var greeting = await wire.ReadReplyAsync();
            if (greeting.StartsWith("220 ", StringComparison.Ordinal))
            {
                output.WriteLine($"reconnected after {refused} refusals in {deadline.Elapsed}");
                return wire;
            }
            await wire.DisposeAsync();
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(5), $"a freed slot was still refused after {deadline.Elapsed}: {greeting}");
        }
    }

    [Fact]
    public async Task A_slot_is_free_once_the_client_has_seen_its_connection_closed()
    {
        await using var sluice = await Instance.StartAsync(c =>
        {
            Instance.Smtp(c)["MaxConnectionsPerClient"] = 3;
            Instance.Smtp(c)["RelayNetworks"] = Array.Empty<string>();
        });
        var held = await OpenManyAsync(sluice.Process.SmtpPort, 2);
        using var stop = new CancellationTokenSource();
        // The two held sessions keep the server busy, which widens the window this looks for.
        var busy = held.Select(async w =>
        {
            while (!stop.IsCancellationRequested) Assert.Equal("250 2.0.0 Ok", await w.CommandAsync("NOOP"));
        }).ToArray();
        try
        {
            // The third slot changes hands again and again; each newcomer connects only after it
            // has seen the server close the connection before it.
            for (var round = 0; round < 300; round++)
            {
                await using var wire = await SmtpWire.ConnectAsync(sluice.Process.SmtpPort);
                var greeting = await wire.ReadReplyAsync();
                Assert.True(greeting.StartsWith("220 ", StringComparison.Ordinal), $"round {round}: {greeting}");
                Assert.StartsWith("221 ", await wire.CommandAsync("QUIT"), StringComparison.Ordinal);
                Assert.Equal("", await wire.ReadToCloseAsync());
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(busy);
            await CloseAllAsync(held);
        }
    }

    [Fact]
    public async Task Total_limit_refuses_the_sixth_connection()
    {
        await using var sluice = await Instance.StartAsync(c =>
        {
            Instance.Smtp(c)["MaxConnections"] = 5;
            Instance.Smtp(c)["StressCommandTimeout"] = "5m"; // 4 of 5 slots is stress: keep the held ones from timing out
        });
        var held = await OpenManyAsync(sluice.Process.SmtpPort, 5);
        try
        {
            await using var sixth = await SmtpWire.ConnectAsync(sluice.Process.SmtpPort);
            var refusal = await sixth.ReadReplyAsync();
            Assert.StartsWith("421 4.7.0 mx.sluice.test ", refusal, StringComparison.Ordinal);
            Assert.Contains("too many connections", refusal, StringComparison.Ordinal);
            Assert.DoesNotContain("from 127.0.0.1", refusal, StringComparison.Ordinal); // loopback is a relay network: only the total counts
            Assert.Equal("", await sixth.ReadToCloseAsync());
            foreach (var w in held) Assert.Equal("250 2.0.0 Ok", await w.CommandAsync("NOOP"));
        }
        finally
        {
            await CloseAllAsync(held);
        }
    }

    [Fact]
    public async Task Three_hundred_idle_sessions_do_not_hold_up_a_real_client()
    {
        await using var sluice = await Instance.StartAsync();
        var idle = await OpenManyAsync(sluice.Process.SmtpPort, 300);
        try
        {
            var clock = Stopwatch.StartNew();
            using (var client = new SmtpClient())
            {
                await client.ConnectAsync("127.0.0.1", sluice.Process.SmtpPort, MailKit.Security.SecureSocketOptions.None);
                var message = new MimeMessage();
                message.From.Add(MailboxAddress.Parse("busy@client.test"));
                message.To.Add(MailboxAddress.Parse("busy@localhost"));
                message.Subject = "among idlers";
                message.Body = new TextPart("plain") { Text = "prompt" };
                await client.SendAsync(message);
                await client.DisconnectAsync(true);
            }
            clock.Stop();
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"a transaction took {clock.Elapsed} with 300 idle sessions open");
            Assert.Contains("Subject: among idlers", await sluice.WaitForMaildirAsync("busy"), StringComparison.Ordinal);
            // Every idle session is still served.
            var noops = await Task.WhenAll(idle.Select(w => w.CommandAsync("NOOP")));
            Assert.All(noops, r => Assert.Equal("250 2.0.0 Ok", r));
        }
        finally
        {
            await CloseAllAsync(idle);
        }
    }

    [Fact]
    public async Task An_idle_client_is_told_421_and_disconnected_after_the_command_timeout()
    {
        await using var sluice = await Instance.StartAsync(c =>
        {
            Instance.Smtp(c)["CommandTimeout"] = "2s";
            Instance.Smtp(c)["StressCommandTimeout"] = "2s"; // may not exceed CommandTimeout
        });
        await using var wire = await SmtpWire.OpenAsync(sluice.Process.SmtpPort);
        var clock = Stopwatch.StartNew(); // before the command: the server's timer starts after it, never before
        Assert.StartsWith("250", await wire.CommandAsync("EHLO idle.client.test"), StringComparison.Ordinal);
        var reply = await wire.ReadReplyAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("421 4.4.2 mx.sluice.test Error: timeout exceeded", reply);
        Assert.Equal("", await wire.ReadToCloseAsync());
        Assert.True(clock.Elapsed > TimeSpan.FromSeconds(1.5), $"cut after {clock.Elapsed}, before the 2s timeout");
    }

    [Fact]
    public async Task Under_stress_an_idle_client_is_cut_after_the_short_timeout()
    {
        // 10 slots: from 8 sessions on the server is under stress and waits 3s instead of 5m (3s, not less:
        // the calm session's NOOP below must reach the server before the eighth session is cut and stress ends).
        await using var sluice = await Instance.StartAsync(c =>
        {
            Instance.Smtp(c)["MaxConnections"] = 10;
            Instance.Smtp(c)["CommandTimeout"] = "5m";
            Instance.Smtp(c)["StressCommandTimeout"] = "3s";
        });
        var calm = new List<SmtpWire>();
        for (var i = 0; i < 7; i++) calm.Add(await SmtpWire.OpenAsync(sluice.Process.SmtpPort));
        try
        {
            var clock = Stopwatch.StartNew();
            // The eighth session starts under stress; a calm one that speaks now is re-armed under stress too.
            await using var eighth = await SmtpWire.OpenAsync(sluice.Process.SmtpPort);
            Assert.Equal("250 2.0.0 Ok", await calm[0].CommandAsync("NOOP"));
            Assert.Equal("421 4.4.2 mx.sluice.test Error: timeout exceeded", await eighth.ReadReplyAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal("", await eighth.ReadToCloseAsync());
            Assert.Equal("421 4.4.2 mx.sluice.test Error: timeout exceeded", await calm[0].ReadReplyAsync(TimeSpan.FromSeconds(30)));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"cut after {clock.Elapsed}; the short timeout is 3s");
            // Out of stress again, the others (armed with 5m when they came) are still there.
            Assert.Equal("250 2.0.0 Ok", await calm[1].CommandAsync("NOOP"));
        }
        finally
        {
            await CloseAllAsync(calm);
        }
    }
}
