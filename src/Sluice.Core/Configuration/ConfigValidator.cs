// Values that bind but cannot run: each is reported with its key and why it is impossible.
using System.Net;
using Sluice.Core.Mail;
using Sluice.Core.Mailboxes;

namespace Sluice.Core.Configuration;

internal static class ConfigValidator
{
    /// <summary>Why a PostgreSQL connection string cannot be used, or null; its syntax only: reaching the server is checked at start.</summary>
    private static string? ConnectionStringProblem(string? connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
            return "is required with Queue:Store \"postgres\", e.g. \"Host=db.example;Port=5432;Database=sluice;Username=sluice\"";
        var parsed = new System.Data.Common.DbConnectionStringBuilder();
        try
        {
            parsed.ConnectionString = connectionString;
        }
        catch (ArgumentException e)
        {
            return $"is not a connection string of key=value pairs: {e.Message}";
        }
        return parsed.ContainsKey("Host") || parsed.ContainsKey("Server") ? null : "names no Host (the PostgreSQL server to use)";
    }

    public static List<(string Key, string Reason)> Validate(SluiceOptions o)
    {
        var e = new List<(string, string)>();
        void Check(bool ok, string key, string reason) { if (!ok) e.Add((key, reason)); }

        Check(IsHostname(o.Hostname), "Hostname", $"\"{o.Hostname}\" is not a host name");
        Check(!string.IsNullOrWhiteSpace(o.DataDir), "DataDir", "must not be empty");
        ValidateAccount(o, Check);

        for (int i = 0; i < o.Smtp.Listen.Count; i++)
            Check(Endpoints.TryParseSmtpListen(o.Smtp.Listen[i], out _, out _), $"Smtp:Listen:{i}",
                $"\"{o.Smtp.Listen[i]}\" is not an address:port such as 127.0.0.1:2525 or [::1]:2525, optionally followed by a role (smtp, submission, submissions)");
        for (int i = 0; i < o.Smtp.RelayNetworks.Count; i++)
            Check(IPNetwork.TryParse(o.Smtp.RelayNetworks[i], out _), $"Smtp:RelayNetworks:{i}", $"\"{o.Smtp.RelayNetworks[i]}\" is not a network such as 127.0.0.0/8");
        for (int i = 0; i < o.Smtp.LocalDomains.Count; i++)
            Check(IsHostname(o.Smtp.LocalDomains[i]), $"Smtp:LocalDomains:{i}", $"\"{o.Smtp.LocalDomains[i]}\" is not a domain");
        for (int i = 0; i < o.Smtp.RelayDomains.Count; i++)
            Check(IsHostname(o.Smtp.RelayDomains[i]), $"Smtp:RelayDomains:{i}", $"\"{o.Smtp.RelayDomains[i]}\" is not a domain");
        Check((o.Smtp.TlsCertificate is null) == (o.Smtp.TlsKey is null), o.Smtp.TlsCertificate is null ? "Smtp:TlsCertificate" : "Smtp:TlsKey",
            "Smtp:TlsCertificate and Smtp:TlsKey go together: give both PEM files, or neither for a self-signed certificate");
        Check(o.Smtp.MaxConnections >= 1, "Smtp:MaxConnections", "must be at least 1");
        Check(o.Smtp.MaxConnectionsPerClient >= 1, "Smtp:MaxConnectionsPerClient", "must be at least 1");
        Check(o.Smtp.MaxErrors >= 1, "Smtp:MaxErrors", "must be at least 1");
        Check(o.Smtp.CommandTimeout > TimeSpan.Zero, "Smtp:CommandTimeout", "must be longer than zero");
        Check(o.Smtp.StressCommandTimeout > TimeSpan.Zero && o.Smtp.StressCommandTimeout <= o.Smtp.CommandTimeout,
            "Smtp:StressCommandTimeout", "must be longer than zero and at most Smtp:CommandTimeout");
        Check(o.Smtp.MaxMessageBytes >= 1024, "Smtp:MaxMessageBytes", "must be at least 1024");
        Check(o.Smtp.MaxRecipients >= 1, "Smtp:MaxRecipients", "must be at least 1 (RFC 5321 §4.5.3.1.8 asks for 100)");
        Check(o.Smtp.LoginRatePerHour >= 0, "Smtp:LoginRatePerHour", "must be 0 (no limit) or more messages an hour");
        foreach (var (login, senders) in o.Smtp.SenderLogins)
        {
            Check(login.Length > 0 && !login.Any(char.IsControl), $"Smtp:SenderLogins:{login}", "must be an AUTH login name");
            for (int i = 0; i < senders.Count; i++)
                Check(senders[i] == "*" || (senders[i].StartsWith('@') ? IsHostname(senders[i][1..]) : IsAddress(senders[i])), $"Smtp:SenderLogins:{login}:{i}",
                    $"\"{senders[i]}\" is not an address (user@domain, RFC 5321 §4.1.2), @domain, or * for any sender");
        }

        Check(o.Queue.Start >= 0, "Queue:Start", "must be 0 or more");
        Check(o.Queue.Count >= 1, "Queue:Count", "must be at least 1");
        Check(o.Queue.Max >= o.Queue.Count, "Queue:Max", $"must be at least Queue:Count ({o.Queue.Count})");
        Check(o.Queue.Load > 0 && o.Queue.Load <= 1, "Queue:Load", "must be more than 0 and at most 1 (slots in use / slots configured)");
        Check(o.Queue.IdleRetire > TimeSpan.Zero, "Queue:IdleRetire", "must be longer than zero");
        Check(o.Queue.ScaleInterval > TimeSpan.Zero, "Queue:ScaleInterval", "must be longer than zero");
        Check(o.Queue.SegmentBytes.Bytes >= 1 << 20, "Queue:SegmentBytes", "must be at least 1MB");
        Check(o.Queue.ActiveMessages >= 1, "Queue:ActiveMessages", "must be at least 1");
        Check(o.Queue.Store is QueueOptions.FileStore or QueueOptions.PostgresStore, "Queue:Store",
            $"\"{o.Queue.Store}\" is not a queue store (file or postgres)");
        if (o.Queue.Store == QueueOptions.PostgresStore && ConnectionStringProblem(o.Queue.ConnectionString) is { } problem)
            Check(false, "Queue:ConnectionString", problem);
        if (o.Queue.Store == QueueOptions.PostgresStore)
            Check(IsNodeName(o.Queue.Node), "Queue:Node", $"\"{o.Queue.Node}\" is not a node name (1 to 63 letters, digits, dots, hyphens, underscores)");
        Check(o.Queue.Lease >= TimeSpan.FromSeconds(1), "Queue:Lease", "must be at least 1s");
        if (!NodeRoles.TryParse(o.Queue.Roles, out _))
            Check(false, "Queue:Roles", $"\"{o.Queue.Roles}\" is not a list of roles (receive, deliver, or receive,deliver)");
        else
            Check(o.Queue.Store == QueueOptions.PostgresStore || NodeRoles.Parse(o.Queue.Roles) == NodeRole.Both, "Queue:Roles",
                "a node with the file spool receives and delivers: roles other than receive,deliver need Queue:Store \"postgres\"");

        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var domainOwner = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < o.Channels.Count; i++)
        {
            var c = o.Channels[i];
            var k = $"Channels:{i}";
            Check(c.Name.Length > 0, $"{k}:Name", "every channel needs a name");
            Check(c.Name.Length == 0 || names.Add(c.Name), $"{k}:Name", $"channel \"{c.Name}\" is defined twice");
            Check(c.Transport is ChannelOptions.MaildirTransport or ChannelOptions.SmtpTransport, $"{k}:Transport",
                $"\"{c.Transport}\" is not a transport (maildir or smtp)");
            Check(c.Concurrency >= 1, $"{k}:Concurrency", "must be at least 1");
            Check(c.DestinationConcurrency >= 1, $"{k}:DestinationConcurrency", "must be at least 1");
            Check(c.InitialDestinationConcurrency >= 1, $"{k}:InitialDestinationConcurrency", "must be at least 1");
            Check(c.DestinationRatePerMinute >= 0, $"{k}:DestinationRatePerMinute", "must be 0 (no limit) or more");
            Check(c.BatchRecipients >= 1, $"{k}:BatchRecipients", "must be at least 1");
            for (int j = 0; j < c.Domains.Count; j++)
            {
                var d = c.Domains[j];
                Check(IsHostname(d), $"{k}:Domains:{j}", $"\"{d}\" is not a domain");
                if (domainOwner.TryGetValue(d, out var other)) e.Add(($"{k}:Domains:{j}", $"\"{d}\" is already routed to channel \"{other}\""));
                else domainOwner[d] = c.Name;
            }
        }
        Check(o.Channels.Any(c => c.Name.Equals(ChannelOptions.RemoteChannelName, StringComparison.OrdinalIgnoreCase)),
            "Channels", "no channel is named \"remote\": it takes every domain no other channel lists");

        foreach (var (domain, target) in o.Routes)
            Check((domain == "*" || IsHostname(domain)) && Endpoints.TryParseHostPort(target, 25, out _, out _),
                $"Routes:{domain}", $"route \"{domain}\" → \"{target}\" must map a domain or * to host:port");
        for (int i = 0; i < o.Dns.Servers.Count; i++)
            Check(Endpoints.TryParseHostPort(o.Dns.Servers[i], 53, out _, out _), $"Dns:Servers:{i}", $"\"{o.Dns.Servers[i]}\" is not host[:port]");
        Check(o.Dns.Timeout > TimeSpan.Zero, "Dns:Timeout", "must be longer than zero");

        Check(o.Delivery.Port is >= 1 and <= 65535, "Delivery:Port", "must be a TCP port, 1 to 65535");
        foreach (var (key, timeout) in new[]
        {
            ("ConnectTimeout", o.Delivery.ConnectTimeout), ("GreetingTimeout", o.Delivery.GreetingTimeout), ("MailTimeout", o.Delivery.MailTimeout),
            ("RcptTimeout", o.Delivery.RcptTimeout), ("DataInitTimeout", o.Delivery.DataInitTimeout), ("DataBlockTimeout", o.Delivery.DataBlockTimeout),
            ("DataTermTimeout", o.Delivery.DataTermTimeout), ("CommandTimeout", o.Delivery.CommandTimeout),
        })
            Check(timeout > TimeSpan.Zero, $"Delivery:{key}", "must be longer than zero");
        Check(o.Delivery.IdleTimeout >= TimeSpan.Zero, "Delivery:IdleTimeout", "must not be negative");
        Check(o.Delivery.MessagesPerConnection >= 1, "Delivery:MessagesPerConnection", "must be at least 1");
        Check(o.Delivery.Workers is >= 0 and <= DeliveryOptions.MaxWorkers, "Delivery:Workers",
            $"must be from 0 (deliver in the server's own process) to {DeliveryOptions.MaxWorkers} child processes");
        foreach (var (domain, level) in o.Delivery.TlsPolicy)
            Check((domain == "*" || IsHostname(domain)) && OutboundTlsNames.TryParse(level, out _), $"Delivery:TlsPolicy:{domain}",
                $"\"{domain}\" → \"{level}\" must map a domain or * to required, opportunistic or none");
        Check(SignedEightBitNames.TryParse(o.Delivery.EightBitDkim, out _), "Delivery:EightBitDkim",
            $"\"{o.Delivery.EightBitDkim}\" must be bounce, convert or send (an 8-bit DKIM-signed message to a server without 8BITMIME)");
        foreach (var (domain, key) in o.Delivery.Dkim)
        {
            Check(IsHostname(domain), $"Delivery:Dkim:{domain}", $"\"{domain}\" is not a domain");
            Check(IsHostname(key.Selector), $"Delivery:Dkim:{domain}:Selector", $"\"{key.Selector}\" is not a selector (DNS labels such as s2026)");
            Check(File.Exists(key.KeyFile), $"Delivery:Dkim:{domain}:KeyFile", $"\"{key.KeyFile}\" is not a file (a PEM private key)");
        }

        Check(o.Retry.Schedule.Count > 0, "Retry:Schedule", "needs at least one interval");
        for (int i = 0; i < o.Retry.Schedule.Count; i++)
            Check(o.Retry.Schedule[i] > TimeSpan.Zero, $"Retry:Schedule:{i}", "must be longer than zero");
        Check(o.Retry.MaxQueueLifetime > TimeSpan.Zero, "Retry:MaxQueueLifetime", "must be longer than zero");
        Check(o.Retry.DelayWarning is not { } warning || warning > TimeSpan.Zero, "Retry:DelayWarning", "must be longer than zero");

        Check(o.Http.Listen is null || Endpoints.TryParseListen(o.Http.Listen, out _), "Http:Listen", $"\"{o.Http.Listen}\" is not an address:port");
        // The admin API injects, deletes and bounces mail: over TCP only behind a bearer token, loopback included,
        // since another local user is not the operator.
        foreach (var (key, token) in new[] { ("Http:Token", o.Http.Token), ("Http:ReadToken", o.Http.ReadToken) })
            Check(token is null || token.Length >= HttpOptions.MinTokenLength, key,
                $"must be at least {HttpOptions.MinTokenLength} characters (e.g. from `openssl rand -hex 32`)");
        Check(o.Http.ReadToken is null || o.Http.ReadToken != o.Http.Token, "Http:ReadToken", "must differ from Http:Token, or reading and changing are one scope");
        ValidateMailboxes(o, Check, domainOwner);
        PrivateDataRules.Validate(o, Check);
        return e;
    }

    /// <summary>Users, aliases and virtual domains: each address well formed, each alias leading somewhere, each domain delivered to Maildirs.</summary>
    private static void ValidateAccount(SluiceOptions o, Action<bool, string, string> check)
    {
        check(o.User is null || o.User.Length > 0 && Privileges.UnixAccounts.FindUser(o.User) is not null, "User",
            $"no user \"{o.User}\" in the password database (getent passwd {o.User})");
        check(o.Group is null || o.User is not null, "Group", "goes with User: the group the server runs as once it is no longer root");
        check(o.Group is null || o.Group.Length > 0 && Privileges.UnixAccounts.FindGroupId(o.Group) is not null, "Group",
            $"no group \"{o.Group}\" in the group database (getent group {o.Group})");
    }

    private static void ValidateMailboxes(SluiceOptions o, Action<bool, string, string> check, Dictionary<string, string> domainOwner)
    {
        var m = o.Mailboxes;
        foreach (var (user, u) in m.Users)
            check(IsAddress(user) && MailboxMap.CanNameMaildir(user) && (u.Quota is null || u.Quota.Value.Bytes > 0),
                $"Mailboxes:Users:{user}", "must be user@domain (the user a dot-string or a quoted string, RFC 5321 §4.1.2, that can name a Maildir) with a positive quota");
        foreach (var (user, u) in m.Users)
            check(u.PasswordHash is null || IsBcryptHash(u.PasswordHash), $"Mailboxes:Users:{user}:PasswordHash",
                "must be a bcrypt hash (\"$2y$11$\" and 53 more characters, as `sluice passwd` writes into the users file)");
        if (m.Srs is { } srs)
        {
            check(IsHostname(srs.Domain), "Mailboxes:Srs:Domain", $"\"{srs.Domain}\" is not a domain (it must name this server in DNS: bounces come back to it)");
            check(srs.Secret.Length >= SrsOptions.MinSecretLength, "Mailboxes:Srs:Secret",
                $"must be at least {SrsOptions.MinSecretLength} characters (e.g. from `openssl rand -hex 32`): whoever knows it can make this server relay");
            check(srs.MaxAgeDays is > 0 and < 1024, "Mailboxes:Srs:MaxAgeDays", "must be from 1 to 1023 days (the timestamp counts days modulo 1024)");
        }
        var map = new MailboxMap(o);
        foreach (var (alias, targets) in m.Aliases)
        {
            var k = $"Mailboxes:Aliases:{alias}";
            var catchAll = alias.StartsWith('@');
            if (!(catchAll ? IsHostname(alias[1..]) : IsAddress(alias))) { check(false, k, "must be name@domain, or @domain for the domain's catch-all"); continue; }
            check(targets.Count > 0, k, "needs at least one target address");
            for (int i = 0; i < targets.Count; i++)
                check(IsAddress(targets[i]), $"{k}:{i}", $"\"{targets[i]}\" is not an address");
            if (targets.All(IsAddress) && (catchAll ? targets.Any(t => map.Expand(t) is null) : map.Expand(alias) is null))
                check(false, k, "leads to a local address that is no user or alias, or loops back to itself");
        }
        foreach (var (domain, dir) in m.Domains)
            check(IsHostname(domain) && MailboxMap.IsDirectoryName(dir), $"Mailboxes:Domains:{domain}", "must map a domain to one directory name under Mailboxes:Root");
        check(m.ExtensionSeparators.All(c => "+-_=~#".Contains(c, StringComparison.Ordinal)), "Mailboxes:ExtensionSeparators",
            $"\"{m.ExtensionSeparators}\" may hold only the characters + - _ = ~ #");
        for (int i = 0; i < m.RoleAccounts.Count; i++)
            check(MailboxMap.MaildirName(m.RoleAccounts[i].ToLowerInvariant()) is not null && !m.RoleAccounts[i].Contains('@', StringComparison.Ordinal), $"Mailboxes:RoleAccounts:{i}", "must be a local part without @ that can name a Maildir");
        var maildirChannels = o.Channels.Where(c => c.Transport == ChannelOptions.MaildirTransport).Select(c => c.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var d in map.MailboxDomains)
        {
            if (domainOwner.TryGetValue(d, out var owner))
                check(maildirChannels.Contains(owner), "Mailboxes", $"\"{d}\" has mailboxes, but channel \"{owner}\" is not a maildir channel");
            else
                check(maildirChannels.Count > 0, "Mailboxes", $"\"{d}\" has mailboxes, but no channel has Transport maildir to deliver them");
        }
    }

    /// <summary>RFC 5321 §4.1.2: the local part a Dot-string or a Quoted-string, as at RCPT.</summary>
    private static bool IsAddress(string a) => a.Contains('@', StringComparison.Ordinal) && LocalPart.TryParse(Address.LocalPartOf(a), out _) && IsHostname(Address.DomainOf(a));

    /// <summary>Modular crypt bcrypt: $2a$, $2b$ or $2y$, a two-digit cost from 04 to 31, 22 characters of salt and 31 of hash.</summary>
    private static bool IsBcryptHash(string h) =>
        h.Length == 60 && h[0] == '$' && h[1] == '2' && h[2] is 'a' or 'b' or 'y' && h[3] == '$' && int.TryParse(h.AsSpan(4, 2), out var cost)
        && cost is >= 4 and <= 31 && h[6] == '$' && h[7..].All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '/');

    private static bool IsNodeName(string s) => s.Length is > 0 and <= 63 && s.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '.' or '_' or '-');

    /// <summary>RFC 1035 §2.3.1 letters, digits, hyphens and dots; UTF-8 labels are allowed for IDN (RFC 6531).</summary>
    internal static bool IsHostname(string s) =>
        s.Length is > 0 and <= 255 && !s.StartsWith('.') && !s.EndsWith('.') && !s.Contains("..", StringComparison.Ordinal)
        && s.All(ch => char.IsLetterOrDigit(ch) || ch is '-' or '.' || ch > 127);
}
