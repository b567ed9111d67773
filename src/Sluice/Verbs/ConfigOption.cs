// Loading the configuration for any verb: a bad file stops the verb with file, key and reason.
using Sluice.Core.Configuration;

namespace Sluice.Verbs;

internal static class ConfigOption
{
    public static SluiceOptions? Load(string? file)
    {
        try
        {
            return ConfigLoader.Load(file);
        }
        catch (ConfigurationException e)
        {
            Console.Error.WriteLine($"sluice: configuration error:{Environment.NewLine}{e.Message}");
            return null;
        }
    }
}
