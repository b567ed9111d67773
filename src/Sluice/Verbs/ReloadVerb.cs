// `sluice reload`: ask the running server, through its admin API, to re-read its configuration, and say
// what it did: reloaded (exit 0, with the keys that wait for a restart), or refused with file, key and
// reason, the running configuration kept (exit 78); no server answering is exit 69. A file that does
// not load here is reported without asking the server (it would refuse it too, and it names the DataDir).
using System.CommandLine;
using System.Net.Http.Json;
using Sluice.Operate;

namespace Sluice.Verbs;

internal static class ReloadVerb
{
    /// <summary>A reload reads files and may wait for a flush or another reload in progress.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    public static Command Create(Option<string?> config)
    {
        var reload = new Command("reload", "Have the running server re-read its configuration (channels, domains, limits, routes, retries) and say whether it took it");
        reload.SetAction(async (parse, ct) =>
        {
            var options = ConfigOption.Load(parse.GetValue(config));
            if (options is null)
            {
                Console.Error.WriteLine("reload: the server was not asked; a running server keeps its configuration");
                return ExitCodes.Config;
            }
            using var client = new AdminClient(options);
            client.Http.Timeout = Patience;
            try
            {
                using var response = await client.Http.PostAsync("api/v1/reload", null, ct);
                if (response.StatusCode != System.Net.HttpStatusCode.UnprocessableEntity && !await AdminClient.SucceededAsync(response, "reload", ct))
                    return ExitCodes.Unavailable;
                var outcome = (await response.Content.ReadFromJsonAsync(AdminJson.Default.ConfigReload, ct))!;
                if (!outcome.Applied)
                {
                    foreach (var problem in outcome.Problems) Console.Error.WriteLine($"reload: refused, the server keeps its running configuration: {problem}");
                    return ExitCodes.Config;
                }
                foreach (var line in outcome.Lines) Console.WriteLine($"reload: {line}");
                return ExitCodes.Ok;
            }
            catch (HttpRequestException e)
            {
                Console.Error.WriteLine($"reload: {client.Unreachable(e)}");
                return ExitCodes.Unavailable;
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                Console.Error.WriteLine($"reload: sluice serve did not answer within {Patience.TotalSeconds:0}s on {options.AdminSocket}; its log says whether it reloaded");
                return ExitCodes.TempFail;
            }
        });
        return reload;
    }
}
