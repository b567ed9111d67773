// A fan-out for the real binary: DOMAINS domains dK.fan.test, each with its MX at in.fan.test (127.0.0.1),
// served by a real unbound, and the configuration that delivers to them by MX resolution, not Routes.
using Sluice.Testing;

namespace Sluice.EndToEnd;

internal static class FanOut
{
    public static string Recipient(int k) => $"user@d{k}.fan.test";

    public static Task<UnboundServer> StartDnsAsync(int domains) => UnboundServer.StartAsync(
        [.. Enumerable.Range(0, domains).Select(i => $"d{i}.fan.test. 300 IN MX 10 in.fan.test."), "in.fan.test. 300 IN A 127.0.0.1"], []);

    /// <param name="delivery">The Delivery section: its Port is the sink's.</param>
    public static void Configure(Dictionary<string, object> config, UnboundServer dns, object delivery, int concurrency)
    {
        config.Remove("Routes");
        config["Dns"] = new { Servers = new[] { dns.Address } };
        config["Delivery"] = delivery;
        config["Channels"] = new object[]
        {
            new { Name = "local", Transport = "maildir", Domains = new[] { "localhost" } },
            new { Name = "remote", Transport = "smtp", Concurrency = concurrency, DestinationConcurrency = 2 },
        };
    }

    /// <summary>One message to every recipient given, over the wire; every reply must be a success.</summary>
    public static async Task SendAsync(Instance sluice, IReadOnlyList<string> recipients, string body = "body\r\n")
    {
        await using var wire = await SmtpWire.OpenAsync(sluice.Process.SmtpPort);
        Assert.StartsWith("250", await wire.CommandAsync("EHLO client.test"), StringComparison.Ordinal);
        Assert.Equal("250 2.1.0 Ok", await wire.CommandAsync("MAIL FROM:<sender@local.test>"));
        foreach (var r in recipients) Assert.Equal("250 2.1.5 Ok", await wire.CommandAsync($"RCPT TO:<{r}>"));
        Assert.StartsWith("354", await wire.CommandAsync("DATA"), StringComparison.Ordinal);
        Assert.StartsWith("250 2.0.0 Ok", await wire.CommandAsync($"Subject: to {recipients.Count}\r\n\r\n{body}."), StringComparison.Ordinal);
    }
}
