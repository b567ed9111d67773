// Source-generated JSON for the queue endpoints' replies, shared by the server and `sluice queue`.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sluice.Operate;

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(MessageSummary))]
[JsonSerializable(typeof(MessageDetail))]
[JsonSerializable(typeof(QueueActionReply))]
[JsonSerializable(typeof(QueueShape))]
[JsonSerializable(typeof(ErrorReply))]
public sealed partial class QueueJson : JsonSerializerContext;
