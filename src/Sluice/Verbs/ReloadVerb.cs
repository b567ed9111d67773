// `sluice reload`: check the configuration, then ask the running server to re-read it (SIGHUP). A file
// that does not load is reported here (exit 78) and the server is not told.
using System.CommandLine;
using Sluice.Core.IO;

namespace Sluice.Verbs;

internal static class ReloadVerb
{
    public static Command Create(Option<string?> config)
    {
        var reload = new Command("reload", "Have the running server re-read its configuration: channels, domains, limits, routes, retries (SIGHUP)");
        reload.SetAction(parse =>
        {
            var options = ConfigOption.Load(parse.GetValue(config));
            if (options is null) return ExitCodes.Config;
            return RunningServer.Signal(options, UnixSignal.Hangup, "reload",
                "to re-read its configuration; its log says what changed and what waits for a restart");
        });
        return reload;
    }
}
