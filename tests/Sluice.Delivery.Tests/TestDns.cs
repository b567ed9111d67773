// The loopback DNS server the delivery tests ask: one unbound for the collection, serving a zone with
// each case RFC 5321 §5.1 and RFC 7505 tell apart. MX hosts live on 127.0.0.21 and up (and ::1), where
// the tests start sinks; an address with no sink refuses connections.
using System.Net;
using Sluice.Core.Configuration;
using Sluice.Delivery.Smtp;
using Sluice.Testing;

namespace Sluice.Delivery.Tests;

public sealed class TestDns : IAsyncLifetime
{
    public static readonly IPAddress First = IPAddress.Parse("127.0.0.21");
    public static readonly IPAddress Second = IPAddress.Parse("127.0.0.22");
    public static readonly IPAddress EqualA = IPAddress.Parse("127.0.0.23");
    public static readonly IPAddress EqualB = IPAddress.Parse("127.0.0.24");
    public static readonly IPAddress Implicit = IPAddress.Parse("127.0.0.25");
    public static readonly IPAddress DualV4 = IPAddress.Parse("127.0.0.26");

    private static readonly string[] Records =
    [
        "pref.test. 300 IN MX 20 second.pref.test.",
        "pref.test. 300 IN MX 10 first.pref.test.",
        $"first.pref.test. 300 IN A {First}",
        $"second.pref.test. 300 IN A {Second}",
        "equal.test. 300 IN MX 10 a.equal.test.",
        "equal.test. 300 IN MX 10 b.equal.test.",
        $"a.equal.test. 300 IN A {EqualA}",
        $"b.equal.test. 300 IN A {EqualB}",
        $"implicit.test. 300 IN A {Implicit}",
        "dual.test. 300 IN MX 10 mx.dual.test.",
        "mx.dual.test. 300 IN AAAA ::1",
        $"mx.dual.test. 300 IN A {DualV4}",
        "nullmx.test. 300 IN MX 0 .",
        "nohost.test. 300 IN MX 10 gone.nohost.test.",
        "brokenmx.test. 300 IN MX 10 mx.servfail.test.",
        "noaddress.test. 300 IN TXT \"no address here\"",
    ];

    public UnboundServer Server { get; private set; } = null!;

    /// <summary>A resolver that asks <see cref="Server"/> only, as Dns.Servers would make it.</summary>
    public MxResolver Resolver() => new(new DnsOptions { Servers = [Server.Address], Timeout = TimeSpan.FromSeconds(2) });

    public async Task InitializeAsync() => Server = await UnboundServer.StartAsync(Records, ["servfail.test"]);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class DnsCollection : ICollectionFixture<TestDns>
{
    public const string Name = "loopback DNS";
}
