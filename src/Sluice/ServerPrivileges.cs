// `User`/`Group`: a server started as root becomes that user once its listeners are bound and its log
// is open, before it reads a byte from a client; everything it writes from then on is that user's.
using Sluice.Core.Configuration;
using Sluice.Core.Logging;
using Sluice.Core.Privileges;

namespace Sluice;

internal static class ServerPrivileges
{
    /// <summary>
    /// Drops to User:Group when one is set, and logs whom the server runs as; returns why it cannot
    /// ("key 'X': reason"), and then the server must not start.
    /// </summary>
    public static string? Apply(SluiceOptions options, DeliveryLog log)
    {
        if (options.User is null)
        {
            if (ProcessIdentity.IsRoot)
                log.Write("warning: privileges: running as root (uid 0) with no User configured: set User to an unprivileged account so that a flaw in Sluice does not hand over the host");
            else
                log.Write(RunningAs(UnixAccounts.FindUser(ProcessIdentity.EffectiveUid)?.Name ?? "?"));
            return null;
        }
        if (UnixAccounts.FindUser(options.User) is not { } user) return $"key 'User': no user \"{options.User}\" in the password database";
        if (GroupOf(options, user) is not { } gid) return $"key 'Group': no group \"{options.Group}\" in the group database";
        if (!ProcessIdentity.IsRoot)
        {
            if (ProcessIdentity.EffectiveUid != user.Uid)
                return $"key 'User': sluice runs as uid {ProcessIdentity.EffectiveUid}, not root, so it cannot become {user.Name} (uid {user.Uid}): start it as root, or as {user.Name}";
            log.Write(RunningAs(user.Name));
            return null;
        }
        var dataDir = Path.GetFullPath(options.DataDir);
        try
        {
            ProcessIdentity.DropTo(user.Uid, gid);
        }
        catch (InvalidOperationException e)
        {
            return $"key 'User': cannot become {user.Name}: {e.Message}";
        }
        if (!ProcessIdentity.CanWriteIn(dataDir))
            return $"key 'DataDir': {dataDir} is not writable by {user.Name} (uid {user.Uid}), whom User makes the server: chown -R {user.Name} {dataDir}";
        log.Write(RunningAs(user.Name));
        return null;
    }

    /// <summary>
    /// Before root writes anything under DataDir (the log may be there): a DataDir that does not exist yet is
    /// made and given to User, so the server can write in it once it is that user.
    /// </summary>
    /// <exception cref="IOException">DataDir could not be made or given.</exception>
    public static void GiveNewDataDir(SluiceOptions options)
    {
        var dataDir = Path.GetFullPath(options.DataDir);
        if (options.User is null || !ProcessIdentity.IsRoot || Directory.Exists(dataDir)) return;
        // An unknown user or group: Apply refuses to start, naming the key.
        if (UnixAccounts.FindUser(options.User) is not { } user || GroupOf(options, user) is not { } gid) return;
        Directory.CreateDirectory(dataDir);
        FileOwnership.Give(dataDir, user.Uid, gid);
    }

    private static uint? GroupOf(SluiceOptions options, UnixUser user) =>
        options.Group is null ? user.Gid : UnixAccounts.FindGroupId(options.Group);

    private static string RunningAs(string name) =>
        $"privileges: running as {name} (uid {ProcessIdentity.EffectiveUid}, gid {ProcessIdentity.EffectiveGid})";
}
