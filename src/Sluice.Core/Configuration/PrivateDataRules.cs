// The keys that decide who else may read what Sluice keeps: secrets other users can read are refused,
// and the users and groups given Maildirs or the admin socket must exist.
using Sluice.Core.IO;
using Sluice.Core.Privileges;
using Sluice.Core.Mailboxes;

namespace Sluice.Core.Configuration;

internal static class PrivateDataRules
{
    public static void Validate(SluiceOptions o, Action<bool, string, string> check)
    {
        // Refused, not warned about: a warning scrolls past, and a key others could read is to be taken as leaked (OpenSSH, Postfix).
        if (o.Smtp.TlsKey is { } tlsKey) Secret(check, "Smtp:TlsKey", tlsKey);
        Secret(check, "Smtp:UsersFile", o.SmtpUsersPath); // DataDir/smtp-users when unset
        foreach (var (domain, key) in o.Delivery.Dkim) Secret(check, $"Delivery:Dkim:{domain}:KeyFile", key.KeyFile);

        var m = o.Mailboxes;
        check(m.Mode is null || MaildirPermissions.TryParseMode(m.Mode, out _), "Mailboxes:Mode",
            $"\"{m.Mode}\" is not an octal mode from 0700 to 0777 for Maildir directories (e.g. \"0750\"; files get it without x, 0640)");
        check(m.Owner is null || FileOwnership.UserId(m.Owner) is not null, "Mailboxes:Owner", $"there is no user \"{m.Owner}\" on this host");
        check(m.Group is null || FileOwnership.GroupId(m.Group) is not null, "Mailboxes:Group", $"there is no group \"{m.Group}\" on this host");
        check(o.Http.SocketGroup is null || FileOwnership.GroupId(o.Http.SocketGroup) is not null, "Http:SocketGroup", $"there is no group \"{o.Http.SocketGroup}\" on this host");
    }

    private static void Secret(Action<bool, string, string> check, string key, string path)
    {
        if (PrivateFiles.ExposedSecret(path) is { } problem) check(false, key, problem);
    }
}
