// What one node of a cluster does (ZMailer's server farms): receive mail over SMTP, deliver queued
// mail, or both. Written as `sluice serve --roles receive,deliver` or the Queue.Roles key.
namespace Sluice.Core.Configuration;

[Flags]
public enum NodeRole
{
    Receive = 1,
    Deliver = 2,
    Both = Receive | Deliver,
}

public static class NodeRoles
{
    public const string Both = "receive,deliver";

    /// <summary>"receive", "deliver" or both, comma-separated in any order (case and spaces ignored); nothing else.</summary>
    public static bool TryParse(string? text, out NodeRole roles)
    {
        roles = 0;
        foreach (var part in (text ?? "").Split(',', StringSplitOptions.TrimEntries))
        {
            if (part.Equals("receive", StringComparison.OrdinalIgnoreCase)) roles |= NodeRole.Receive;
            else if (part.Equals("deliver", StringComparison.OrdinalIgnoreCase)) roles |= NodeRole.Deliver;
            else return false;
        }
        return roles != 0;
    }

    public static NodeRole Parse(string text) => TryParse(text, out var roles) ? roles : throw new FormatException($"\"{text}\" is not a list of roles");

    /// <summary>The canonical spelling, as the node's row in the queue database shows it.</summary>
    public static string Format(NodeRole roles) => roles switch
    {
        NodeRole.Receive => "receive",
        NodeRole.Deliver => "deliver",
        _ => Both,
    };
}
