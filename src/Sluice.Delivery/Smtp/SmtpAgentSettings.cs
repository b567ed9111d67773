// What an SMTP delivery agent is made from, as one record: the server builds its own agent from it, and
// hands it to each delivery worker process (as JSON), so both deliver alike: the worker gets the
// server's values as started, not whatever the file says by the time the worker (re)starts.
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Sluice.Core.Configuration;
using Sluice.Core.IO;

namespace Sluice.Delivery.Smtp;

public sealed class SmtpAgentSettings
{
    // Populate: dictionaries are filled into the ones the option types make, which compare keys ignoring case.
    private static readonly JsonSerializerOptions Json = new() { PreferredObjectCreationHandling = JsonObjectCreationHandling.Populate };

    public string Hostname { get; init; } = "";
    /// <summary>Smtp.Listen: MX hosts at these addresses are this server (a loop).</summary>
    public List<string> Listen { get; init; } = [];
    public DnsOptions Dns { get; init; } = new();
    public DeliveryOptions Delivery { get; init; } = new();
    public Dictionary<string, string> Routes { get; init; } = new(StringComparer.OrdinalIgnoreCase);

    public static SmtpAgentSettings From(SluiceOptions options) =>
        new() { Hostname = options.Hostname, Listen = options.Smtp.Listen, Dns = options.Dns, Delivery = options.Delivery, Routes = options.Routes };

    public SmtpRelayAgent CreateAgent(SmtpRoutes routes, TimeProvider time, SessionBudget sessions) =>
        new(routes, new MxResolver(Dns, sessions), Hostname, Delivery, time, sessions,
            new OwnAddresses(Hostname, Listen.Select(l => Endpoints.TryParseSmtpListen(l, out var ep, out _) ? ep : null).OfType<IPEndPoint>()));

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    public static SmtpAgentSettings FromJson(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize<SmtpAgentSettings>(json, Json) ?? throw new JsonException("no settings");

    /// <summary>A routes table as JSON (a reload's), compared ignoring case as the configuration's is.</summary>
    public static Dictionary<string, string> RoutesFromJson(ReadOnlySpan<byte> json) =>
        new(JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? [], StringComparer.OrdinalIgnoreCase);
}
