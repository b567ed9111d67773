// The channels patch's domain lists: which channel carries mail for a domain. The "remote"
// channel takes every domain no other channel lists.
using Sluice.Core.Configuration;
using Sluice.Core.Mail;

namespace Sluice.Scheduling;

public sealed class ChannelMap
{
    private readonly Dictionary<string, ChannelOptions> _byDomain = new(StringComparer.OrdinalIgnoreCase);

    public ChannelMap(IReadOnlyList<ChannelOptions> channels)
    {
        Channels = channels;
        Remote = channels.First(c => c.Name.Equals(ChannelOptions.RemoteChannelName, StringComparison.OrdinalIgnoreCase));
        foreach (var c in channels)
            foreach (var d in c.Domains) _byDomain[Address.AsciiDomain(d) ?? d] = c;
    }

    public IReadOnlyList<ChannelOptions> Channels { get; }
    public ChannelOptions Remote { get; }

    /// <summary>Looked up in A-label form, so "bücher.example" and "xn--bcher-kva.example" go the same way.</summary>
    public ChannelOptions For(string domain) => _byDomain.GetValueOrDefault(Address.AsciiDomain(domain) ?? domain, Remote);
}
