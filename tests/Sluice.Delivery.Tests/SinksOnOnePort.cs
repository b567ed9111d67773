// SMTP sinks on several loopback addresses sharing one port, the way MX hosts share port 25: the
// agent under test has one Delivery.Port, and the DNS answer picks the address.
using System.Net;
using System.Net.Sockets;
using Sluice.Testing;

namespace Sluice.Delivery.Tests;

internal sealed class SinksOnOnePort : IAsyncDisposable
{
    private readonly Dictionary<IPAddress, SmtpSink> _sinks;

    private SinksOnOnePort(int port, Dictionary<IPAddress, SmtpSink> sinks)
    {
        Port = port;
        _sinks = sinks;
    }

    public int Port { get; }

    public SmtpSink this[IPAddress address] => _sinks[address];

    /// <summary>One sink on each address; the port is free on the first and, after a few tries if need be, on all.</summary>
    public static async Task<SinksOnOnePort> StartAsync(params IPAddress[] addresses)
    {
        for (int attempt = 1; ; attempt++)
        {
            var sinks = new Dictionary<IPAddress, SmtpSink>();
            try
            {
                var first = new SmtpSink(addresses[0], 0);
                sinks[addresses[0]] = first;
                foreach (var address in addresses.Skip(1)) sinks[address] = new SmtpSink(address, first.Port);
                return new SinksOnOnePort(first.Port, sinks);
            }
            catch (SocketException) when (attempt < 10)
            {
                foreach (var sink in sinks.Values) await sink.DisposeAsync();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var sink in _sinks.Values) await sink.DisposeAsync();
    }
}
