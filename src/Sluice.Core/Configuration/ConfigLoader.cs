// Loads the options tree: embedded defaults, then the JSON file, then SLUICE__ environment
// variables, then the seed's QUEUE_* variables (indimail's qscheduler honours these first).
using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace Sluice.Core.Configuration;

public static class ConfigLoader
{
    public const string EnvironmentPrefix = "SLUICE__";

    private static readonly (string Variable, string Key)[] QueueVariables =
    [
        ("QUEUE_BASE", "Queue:Base"), ("QUEUE_START", "Queue:Start"), ("QUEUE_COUNT", "Queue:Count"),
        ("QUEUE_MAX", "Queue:Max"), ("QUEUE_LOAD", "Queue:Load"),
    ];

    /// <summary>Loads and validates; throws <see cref="ConfigurationException"/> naming file, key and reason.</summary>
    public static SluiceOptions Load(string? file, IDictionary<string, string?>? environment = null)
    {
        environment ??= ReadEnvironment();
        string? fullPath = file is null ? null : Path.GetFullPath(file);
        var builder = new ConfigurationBuilder();
        if (fullPath is not null)
        {
            if (!File.Exists(fullPath)) throw new ConfigurationException($"{fullPath}: the file does not exist");
            builder.AddJsonFile(fullPath, optional: false, reloadOnChange: false);
        }
        var sluiceVars = environment.Where(e => e.Key.StartsWith(EnvironmentPrefix, StringComparison.OrdinalIgnoreCase))
            .ToDictionary(e => e.Key[EnvironmentPrefix.Length..].Replace("__", ":", StringComparison.Ordinal), e => e.Value);
        builder.AddInMemoryCollection(sluiceVars);
        var queueVars = QueueVariables.Where(q => environment.ContainsKey(q.Variable))
            .ToDictionary(q => q.Key, q => environment[q.Variable]);
        builder.AddInMemoryCollection(queueVars);

        IConfigurationRoot root;
        try
        {
            root = builder.Build();
        }
        catch (Exception e) when (e is FormatException or InvalidDataException or JsonException)
        {
            var json = FindInner<JsonException>(e);
            var where = json?.LineNumber is long line ? $" at line {line + 1}, column {json.BytePositionInLine + 1}" : "";
            throw new ConfigurationException($"{fullPath}: not valid JSON{where}: {(json ?? e).Message}");
        }

        string SourceOf(string key)
        {
            var q = QueueVariables.FirstOrDefault(v => string.Equals(v.Key, key, StringComparison.OrdinalIgnoreCase));
            if (q.Variable is not null && queueVars.ContainsKey(q.Key)) return $"environment {q.Variable}";
            var env = sluiceVars.Keys.FirstOrDefault(k => k.Equals(key, StringComparison.OrdinalIgnoreCase)
                || key.StartsWith(k + ":", StringComparison.OrdinalIgnoreCase) || k.StartsWith(key + ":", StringComparison.OrdinalIgnoreCase));
            if (env is not null) return $"environment {EnvironmentPrefix}{env.Replace(":", "__", StringComparison.Ordinal)}";
            return fullPath ?? "embedded defaults";
        }

        var options = new SluiceOptions();
        var binder = new ConfigBinder();
        binder.BindObject(root, options, "");
        var errors = binder.Errors.Concat(ConfigValidator.Validate(options)).ToList();
        if (errors.Count > 0)
            throw new ConfigurationException(string.Join(Environment.NewLine,
                errors.Select(e => $"{SourceOf(e.Key)}: key '{e.Key}': {e.Reason}")));
        RouteMailboxDomains(options);
        return options;
    }

    /// <summary>
    /// A domain the Mailboxes section names is local: when no channel lists it, the first maildir channel
    /// takes it, so listing users or aliases is enough to have their mail delivered (the validator checks there is one).
    /// </summary>
    private static void RouteMailboxDomains(SluiceOptions options)
    {
        var listed = options.Channels.SelectMany(c => c.Domains).Select(d => Mail.Address.AsciiDomain(d) ?? d).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var unrouted = new Mailboxes.MailboxMap(options).MailboxDomains.Where(d => !listed.Contains(d)).ToList();
        if (unrouted.Count > 0) options.Channels.First(c => c.Transport == ChannelOptions.MaildirTransport).Domains.AddRange(unrouted);
    }

    private static Dictionary<string, string?> ReadEnvironment()
    {
        var vars = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
            vars[(string)e.Key] = (string?)e.Value;
        return vars;
    }

    private static T? FindInner<T>(Exception? e) where T : Exception
    {
        for (; e is not null; e = e.InnerException)
            if (e is T t) return t;
        return null;
    }
}
