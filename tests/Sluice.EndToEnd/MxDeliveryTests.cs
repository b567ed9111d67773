// The operator contract's Dns.Servers and Delivery.Port, in the real process: with no Routes, remote
// mail follows MX records served by unbound on loopback to the sink, and a domain that does not exist
// fails at once with 5.1.2 instead of waiting in the queue.
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed class MxDeliveryTests
{
    [Fact]
    public async Task Serve_delivers_by_MX_through_the_configured_DNS_server_and_port()
    {
        await using var dns = await UnboundServer.StartAsync(["mx.e2e.test. 300 IN MX 10 in.mx.e2e.test.", "in.mx.e2e.test. 300 IN A 127.0.0.1"], []);
        await using var mx = new SmtpSink();
        await using var sluice = await Instance.StartAsync(c =>
        {
            c.Remove("Routes");
            c["Dns"] = new { Servers = new[] { dns.Address } };
            c["Delivery"] = new { Port = mx.Port };
        });

        var env = new Dictionary<string, string> { ["SLUICE__Smtp__Listen__0"] = $"127.0.0.1:{sluice.Process.SmtpPort}" };
        foreach (var rcpt in new[] { "user@mx.e2e.test", "user@gone.e2e.test" })
        {
            var (exit, _, stderr) = await SluiceProcess.RunAsync(sluice.Dir.Path, "Subject: mx\n\nby MX\n", env, "inject", "--config", sluice.ConfigFile, "-f", "postmaster@local.test", rcpt);
            Assert.True(exit == 0, stderr);
        }
        await mx.WaitForCountAsync(1, TimeSpan.FromSeconds(30));
        Assert.Equal(["user@mx.e2e.test"], Assert.Single(mx.Messages).Recipients);
        await sluice.WaitForLogAsync("failure: 550 5.1.2 gone.e2e.test does not exist (NXDOMAIN)");
    }
}
