// Which channel a domain goes to; an IDN domain routes the same in U-label and A-label form, as the
// receiver accepts it in either (RFC 5890).
using Sluice.Core.Configuration;

namespace Sluice.Scheduling.Tests;

public sealed class ChannelMapTests
{
    private static readonly ChannelMap Map = new(
    [
        new() { Name = "local", Transport = ChannelOptions.MaildirTransport, Domains = ["localhost", "bücher.example"] },
        new() { Name = ChannelOptions.RemoteChannelName },
    ]);

    [Theory]
    [InlineData("localhost", "local")]
    [InlineData("LOCALHOST", "local")]
    [InlineData("bücher.example", "local")]
    [InlineData("BÜCHER.example", "local")]
    [InlineData("xn--bcher-kva.example", "local")]
    [InlineData("b\u00FCcher\uFF61example", "remote")]
    [InlineData("elsewhere.example", "remote")]
    public void A_domain_goes_to_the_channel_that_lists_it_in_either_form(string domain, string channel) =>
        Assert.Equal(channel, Map.For(domain).Name);
}
