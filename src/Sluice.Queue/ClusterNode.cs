// The nodes sharing one queue database as their heartbeat rows describe them: what `sluice top`,
// /metrics and the status API show of the whole cluster. Each node writes its own NodeReport at
// every heartbeat, so the figures are as fresh as the last beat (Queue.Lease / 3).
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sluice.Queue;

/// <param name="Alive">Its lease (alive_until, on the database's clock) has not run out.</param>
/// <param name="Report">What it said at its last heartbeat; null before its first.</param>
public sealed record ClusterNode(string Name, string Roles, bool Alive, DateTimeOffset StartedAt, NodeReport? Report);

/// <summary>One node's totals since it started and its rates over the time since its previous report.</summary>
public sealed record NodeReport(int Messages, int Recipients, int Active, long Accepted, long Delivered, long Deferred, long Failed,
    double AcceptedPerSecond, double DeliveredPerSecond)
{
    public string ToJson() => JsonSerializer.Serialize(this, ClusterJson.Default.NodeReport);

    /// <summary>Null when the row holds no report or one this version cannot read (a newer node's, say).</summary>
    public static NodeReport? FromJson(string? json)
    {
        if (json is null) return null;
        try
        {
            return JsonSerializer.Deserialize(json, ClusterJson.Default.NodeReport);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(NodeReport))]
internal sealed partial class ClusterJson : JsonSerializerContext;
