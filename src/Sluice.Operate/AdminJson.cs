// Source-generated JSON for the admin API's replies, shared by the server and the verbs that read them.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sluice.Operate;

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(ServerStatus))]
[JsonSerializable(typeof(FlushReply))]
[JsonSerializable(typeof(QueueChange))]
[JsonSerializable(typeof(InjectRequest))]
[JsonSerializable(typeof(InjectReply))]
[JsonSerializable(typeof(ConfigReload))]
public sealed partial class AdminJson : JsonSerializerContext;
