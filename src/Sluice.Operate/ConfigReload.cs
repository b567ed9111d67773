// What a configuration reload did (SIGHUP, or POST /api/v1/reload from `sluice reload`): refused with
// the problems found, or applied, with the keys that changed but wait for a restart. Also the API's reply.
namespace Sluice.Operate;

public sealed record ConfigReload(IReadOnlyList<string> Problems, IReadOnlyList<string> RestartKeys, int Channels, int Routes)
{
    public bool Applied => Problems.Count == 0;

    public static ConfigReload Refused(IEnumerable<string> problems) => new([.. problems], [], 0, 0);

    /// <summary>The log lines, to be prefixed with what asked for the reload ("sighup: ").</summary>
    public IEnumerable<string> Lines => Applied
        ? [.. RestartKeys.Select(k => $"{k} changed; it takes effect at restart"), $"configuration reloaded ({Channels} channels, {Routes} routes)"]
        : Problems.Select(p => $"reload refused, keeping the running configuration: {p}");
}
