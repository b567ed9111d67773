// The keys a reload does not apply to a running server (listeners, spools, DataDir, Hostname, TLS, the
// receiver's policy, delivery timeouts...): every key except the reloadable sections, compared by value.
using System.Reflection;
using System.Text.Json;
using Sluice.Core.Configuration;

namespace Sluice;

internal static class RestartOnlyKeys
{
    /// <summary>What <see cref="SluiceServer.Reload"/> applies at run time.</summary>
    public static readonly IReadOnlySet<string> Reloadable = new HashSet<string>
    {
        nameof(SluiceOptions.Channels), nameof(SluiceOptions.Routes), nameof(SluiceOptions.Retry),
        // The receiver's policy: new sessions get it, sessions in progress keep theirs.
        "Smtp.LocalDomains", "Smtp.RelayDomains", "Smtp.RelayNetworks", "Smtp.MaxMessageBytes", "Smtp.MaxRecipients",
        "Smtp.MaxErrors", "Smtp.CommandTimeout", "Smtp.StressCommandTimeout", "Queue.MinFreeBytes",
        // The Scaler's settings, as setqload changes them (Queue.Start, Base and the spool's layout stay).
        "Queue.Dynamic", "Queue.Count", "Queue.Max", "Queue.Load", "Queue.IdleRetire", "Queue.ScaleInterval",
        // The mailbox map: the receiver's next sessions and the Maildir agent's next deliveries get it.
        "Mailboxes.Users", "Mailboxes.Aliases", "Mailboxes.Domains", "Mailboxes.ExtensionSeparators", "Mailboxes.CreateExtensionFolders",
        "Mailboxes.RoleAccounts", "Mailboxes.Srs",
    };

    /// <summary>"Smtp.Listen", "Hostname"...: each key outside <see cref="Reloadable"/> whose value differs.</summary>
    public static IEnumerable<string> Changed(SluiceOptions running, SluiceOptions next)
    {
        foreach (var property in Keys(typeof(SluiceOptions)))
        {
            if (Reloadable.Contains(property.Name)) continue;
            var (was, now) = (property.GetValue(running), property.GetValue(next));
            if (!IsSection(property.PropertyType))
            {
                if (!SameValue(was, now)) yield return property.Name;
                continue;
            }
            foreach (var key in Keys(property.PropertyType))
                if (!Reloadable.Contains($"{property.Name}.{key.Name}") && !SameValue(key.GetValue(was), key.GetValue(now)))
                    yield return $"{property.Name}.{key.Name}";
        }
    }

    /// <summary>Settable properties only: computed paths (QueueBase, PidFile...) follow from the keys.</summary>
    private static IEnumerable<PropertyInfo> Keys(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite);

    /// <summary>A section of the tree (Smtp, Queue...), as opposed to a value, a list or a map.</summary>
    private static bool IsSection(Type type) => type.IsClass && type.Namespace == typeof(SluiceOptions).Namespace;

    private static bool SameValue(object? a, object? b) => JsonSerializer.Serialize(a) == JsonSerializer.Serialize(b);
}
