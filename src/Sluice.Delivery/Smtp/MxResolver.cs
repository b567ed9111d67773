// Where mail for a domain goes (RFC 5321 §5.1): its MX hosts by preference, random among equals, each
// with its addresses; or why there is nowhere, as a reply with its RFC 3463 status. Asks DnsClient,
// which caches each answer for its TTL, so a busy domain costs one query per TTL, not one per message.
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using DnsClient;
using DnsClient.Protocol;
using Sluice.Core.Configuration;
using Sluice.Core.IO;
using Sluice.Core.Mail;

namespace Sluice.Delivery.Smtp;

public sealed class MxResolver
{
    /// <summary>Queries in flight at once: each holds a socket, and a fan-out to thousands of new domains must not spend every descriptor on DNS.</summary>
    private const int MaxQueriesInFlight = 256;
    private readonly LookupClient _dns;
    /// <summary>Each query's socket takes an outbound slot of the process's descriptor budget, as a connection does.</summary>
    private readonly ConnectionBudget _sockets;
    private readonly SemaphoreSlim _inFlight = new(MaxQueriesInFlight, MaxQueriesInFlight);
    /// <summary>A question already being asked is not asked again: deliveries to one new domain share the answer.</summary>
    private readonly ConcurrentDictionary<(string Name, QueryType Type), Task<Answer>> _asking = new();

    /// <param name="sockets">The descriptor budget queries share with outbound connections (none: unlimited).</param>
    public MxResolver(DnsOptions options, SessionBudget? sockets = null)
    {
        _sockets = new ConnectionBudget(sockets ?? SessionBudget.Unlimited);
        var settings = options.Servers.Count == 0 ? new LookupClientOptions() : new LookupClientOptions([.. options.Servers.Select(NameServerOf)]);
        settings.Timeout = options.Timeout;
        settings.Retries = 1;
        settings.UseCache = true;
        // An error is an answer to act on (NXDOMAIN bounces, SERVFAIL defers), not an exception.
        settings.ThrowDnsErrors = false;
        settings.UseTcpFallback = true;
        _dns = new LookupClient(settings);
    }

    /// <summary>The hosts to try for <paramref name="domain"/> in order, or why there are none. Never throws for a DNS problem.</summary>
    public async Task<MxLookup> ResolveAsync(string domain, CancellationToken ct)
    {
        if (Address.AsciiDomain(domain) is not { } name) return MxLookup.Failed($"550 5.1.2 {domain} is not a valid domain name", permanent: true);
        var mx = await QueryAsync(name, QueryType.MX, ct).ConfigureAwait(false);
        if (mx.Failure is { } failure) return failure;
        var records = mx.Answers.MxRecords().ToList();
        // RFC 7505 §3: a lone MX of preference 0 and exchange "." says the domain takes no mail at all.
        if (records is [{ Preference: 0 } only] && IsRoot(only.Exchange)) return MxLookup.Failed($"556 5.1.10 {domain} accepts no mail (null MX, RFC 7505)", permanent: true);
        records.RemoveAll(r => IsRoot(r.Exchange));
        // RFC 5321 §5.1: no MX records means the domain itself is the one host, an implicit MX.
        List<(string Name, int Preference)> names = records.Count == 0 ? [(name, 0)] : InPreferenceOrder(records);
        var hosts = await Task.WhenAll(names.Select(n => AddressesAsync(n.Name, n.Preference, ct))).ConfigureAwait(false);
        var reachable = hosts.Where(h => h.Host is not null).Select(h => h.Host!).ToList();
        if (reachable.Count > 0) return MxLookup.Found(reachable);
        if (hosts.FirstOrDefault(h => h.Failure is { Permanent: false }).Failure is { } lookupFailure) return lookupFailure;
        return records.Count == 0
            ? MxLookup.Failed($"550 5.1.2 {domain} has no MX and no address record", permanent: true)
            : MxLookup.Failed($"554 5.4.4 no MX host of {domain} has an address ({string.Join(", ", names.Select(n => n.Name))})", permanent: true);
    }

    private static bool IsRoot(DnsString exchange) => exchange.Value is "." or "";

    private static List<(string Name, int Preference)> InPreferenceOrder(List<MxRecord> records) =>
        [.. records.OrderBy(r => r.Preference).ThenBy(_ => Random.Shared.Next()).Select(r => (r.Exchange.Value.TrimEnd('.'), (int)r.Preference))];

    /// <summary>
    /// A host's AAAA and A records, interleaved IPv6 first (RFC 8305 §4) so either family's trouble costs one
    /// connect timeout, not all of them. A host with neither is left out; a failed lookup carries its reason.
    /// </summary>
    private async Task<(MxHost? Host, MxLookup? Failure)> AddressesAsync(string host, int preference, CancellationToken ct)
    {
        var v6 = QueryAsync(host, QueryType.AAAA, ct);
        var v4 = QueryAsync(host, QueryType.A, ct);
        var (six, four) = (await v6.ConfigureAwait(false), await v4.ConfigureAwait(false));
        var sixes = six.Answers.AaaaRecords().Select(r => r.Address).ToList();
        var fours = four.Answers.ARecords().Select(r => r.Address).ToList();
        var addresses = new List<IPAddress>(sixes.Count + fours.Count);
        for (int i = 0; i < Math.Max(sixes.Count, fours.Count); i++)
        {
            if (i < sixes.Count) addresses.Add(sixes[i]);
            if (i < fours.Count) addresses.Add(fours[i]);
        }
        if (addresses.Count > 0) return (new MxHost(host, preference, addresses), null);
        return (null, six.Failure ?? four.Failure ?? MxLookup.Failed($"550 5.1.2 {host} has no address", permanent: true));
    }

    private Task<Answer> QueryAsync(string name, QueryType type, CancellationToken ct)
    {
        var key = (name.ToLowerInvariant(), type);
        if (_asking.TryGetValue(key, out var asking)) return asking.WaitAsync(ct);
        var mine = new TaskCompletionSource<Answer>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_asking.TryAdd(key, mine.Task)) return _asking.TryGetValue(key, out asking) ? asking.WaitAsync(ct) : QueryAsync(name, type, ct);
        _ = AskAsync(key, mine);
        return mine.Task.WaitAsync(ct);
    }

    /// <summary>Asks once for every caller waiting on <paramref name="answer"/>; not cancelled by any one of them.</summary>
    private async Task AskAsync((string Name, QueryType Type) key, TaskCompletionSource<Answer> answer)
    {
        try
        {
            await _inFlight.WaitAsync().ConfigureAwait(false);
            try
            {
                using var socket = await _sockets.TakeAsync(CancellationToken.None).ConfigureAwait(false);
                answer.SetResult(await AskOnceAsync(key.Name, key.Type).ConfigureAwait(false));
            }
            finally
            {
                _inFlight.Release();
            }
        }
        catch (Exception e)
        {
            answer.TrySetException(e);
        }
        finally
        {
            _asking.TryRemove(new KeyValuePair<(string, QueryType), Task<Answer>>(key, answer.Task));
        }
    }

    private async Task<Answer> AskOnceAsync(string name, QueryType type)
    {
        try
        {
            var response = await _dns.QueryAsync(name, type, QueryClass.IN).ConfigureAwait(false);
            return response.Header.ResponseCode switch
            {
                DnsHeaderResponseCode.NoError => new(response.Answers, null),
                DnsHeaderResponseCode.NotExistentDomain => new([], MxLookup.Failed($"550 5.1.2 {name} does not exist (NXDOMAIN)", permanent: true)),
                var code => new([], MxLookup.Failed($"451 4.4.3 DNS {type} lookup of {name} failed: {code}", permanent: false)),
            };
        }
        catch (DnsResponseException e)
        {
            // Timeouts and unreachable resolvers: RFC 5321 §5.1 says a transient lookup failure defers, never bounces.
            return new([], MxLookup.Failed($"451 4.4.3 DNS {type} lookup of {name} failed: {e.Message}", permanent: false));
        }
    }

    private static NameServer NameServerOf(string server)
    {
        if (!Endpoints.TryParseHostPort(server, 53, out var host, out var port)) throw new ConfigurationException($"Dns:Servers: \"{server}\" is not host[:port]");
        var address = IPAddress.TryParse(host, out var ip) ? ip
            : Dns.GetHostAddresses(host).FirstOrDefault(a => a.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
              ?? throw new ConfigurationException($"Dns:Servers: \"{host}\" has no address");
        return new NameServer(address, port);
    }

    private readonly record struct Answer(IReadOnlyList<DnsResourceRecord> Answers, MxLookup? Failure);
}

/// <summary>One host to try, with its MX preference (0 for an implicit MX) and its addresses in the order to try them.</summary>
public sealed record MxHost(string Name, int Preference, IReadOnlyList<IPAddress> Addresses);

/// <summary>The hosts for a domain, best first; or, when <see cref="Hosts"/> is empty, the reply that says why not.</summary>
public sealed record MxLookup(IReadOnlyList<MxHost> Hosts, string Reply, bool Permanent)
{
    public static MxLookup Found(IReadOnlyList<MxHost> hosts) => new(hosts, "", false);
    public static MxLookup Failed(string reply, bool permanent) => new([], reply, permanent);
}
