// The operator contract's configuration (design.md §3): one typed options tree, bound from JSON,
// SLUICE__ environment variables and the seed's QUEUE_* variables, validated once at start.
namespace Sluice.Core.Configuration;

public sealed class SluiceOptions
{
    public string Hostname { get; set; } = "localhost";
    public string DataDir { get; set; } = "var";
    /// <summary>Started as root, the server binds its listeners, opens its log, then becomes this user (and <see cref="Group"/>, else the user's own group).</summary>
    public string? User { get; set; }
    public string? Group { get; set; }
    public SmtpOptions Smtp { get; set; } = new();
    public QueueOptions Queue { get; set; } = new();
    public List<ChannelOptions> Channels { get; set; } =
    [
        new() { Name = "local", Transport = ChannelOptions.MaildirTransport, Domains = ["localhost"], Concurrency = 64 },
        new() { Name = ChannelOptions.RemoteChannelName, Transport = ChannelOptions.SmtpTransport, Concurrency = 2000, DestinationConcurrency = 20 },
    ];
    public Dictionary<string, string> Routes { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    public DnsOptions Dns { get; set; } = new();
    public DeliveryOptions Delivery { get; set; } = new();
    public MailboxesOptions Mailboxes { get; set; } = new();
    public RetryOptions Retry { get; set; } = new();
    public HttpOptions Http { get; set; } = new();
    public LogOptions Log { get; set; } = new();

    /// <summary>Directory that holds queue&lt;N&gt; spools: Queue.Base, else DataDir/queue.</summary>
    public string QueueBase => Path.GetFullPath(Queue.Base ?? Path.Combine(DataDir, "queue"));

    public string MailboxRoot => Path.GetFullPath(Mailboxes.Root ?? Path.Combine(DataDir, "maildirs"));

    /// <summary>Users who may AUTH (one "name:bcrypt-hash" per line): Smtp.UsersFile, else DataDir/smtp-users.</summary>
    public string SmtpUsersPath => Path.GetFullPath(Smtp.UsersFile ?? Path.Combine(DataDir, "smtp-users"));

    /// <summary>Where the self-signed certificate made at first start is kept when none is configured.</summary>
    public string TlsDirectory => Path.GetFullPath(Path.Combine(DataDir, "tls"));

    /// <summary>The admin API's Unix socket, where the local verbs (`top`, `queue flush`) reach the running server.</summary>
    public string AdminSocket => Path.GetFullPath(Path.Combine(DataDir, "admin.sock"));

    /// <summary>The running server's PID (qmail-send's way), for the verbs that signal it: `queue flush`, `reload`.</summary>
    public string PidFile => Path.GetFullPath(Path.Combine(DataDir, "sluice.pid"));
}

public sealed class SmtpOptions
{
    /// <summary>"address:port" with an optional role after a space or slash: smtp (default), submission, submissions.</summary>
    public List<string> Listen { get; set; } = ["127.0.0.1:2525"];
    public List<string> RelayNetworks { get; set; } = ["127.0.0.0/8", "::1/128"];
    public List<string> LocalDomains { get; set; } = ["localhost"];
    /// <summary>Domains we relay for or are a backup MX of: accepted from anyone, delivered onwards.</summary>
    public List<string> RelayDomains { get; set; } = [];
    public long MaxMessageBytes { get; set; } = 52_428_800;
    public int MaxRecipients { get; set; } = 1000;
    /// <summary>PEM certificate (chain) and key for STARTTLS and port 465; with neither, a self-signed pair is made.</summary>
    public string? TlsCertificate { get; set; }
    public string? TlsKey { get; set; }
    public string? UsersFile { get; set; }
    /// <summary>Simultaneous inbound sessions in all, and from one client address (RelayNetworks are exempt, as in Postfix).</summary>
    public int MaxConnections { get; set; } = 20_000;
    public int MaxConnectionsPerClient { get; set; } = 50;
    /// <summary>Errors a client may make before it is disconnected (Postfix's smtpd_hard_error_limit).</summary>
    public int MaxErrors { get; set; } = 10;
    /// <summary>RFC 5321 §4.5.3.2.7 server timeout; the stress value applies once most connection slots are taken.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(5);
    public TimeSpan StressCommandTimeout { get; set; } = TimeSpan.FromSeconds(10);
    /// <summary>
    /// Envelope senders each AUTH login may use besides its own name when that is an address: addresses, "@domain",
    /// or "*" for any (Postfix's smtpd_sender_login_maps with reject_sender_login_mismatch, always on).
    /// </summary>
    public Dictionary<string, List<string>> SenderLogins { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>MAIL commands one AUTH login may give in any hour (a sliding window, in memory); 0 for no limit.</summary>
    public int LoginRatePerHour { get; set; }
    /// <summary>Leaves "(authenticated as LOGIN)" out of the Received header (RFC 5321 §4.4 makes it optional).</summary>
    public bool HideAuthenticatedUser { get; set; }
}

public sealed class QueueOptions
{
    public const string FileStore = "file";
    public const string PostgresStore = "postgres";

    public string? Base { get; set; }
    /// <summary>Where queued mail lives: "file" (the spool under Base, the default) or "postgres" (shared by several nodes).</summary>
    public string Store { get; set; } = FileStore;
    /// <summary>Npgsql connection string of the queue database, for Store "postgres".</summary>
    public string? ConnectionString { get; set; }
    /// <summary>This node's name in the queue database (Store "postgres"): its claims and lease are kept under it. Default: the host name.</summary>
    public string Node { get; set; } = System.Net.Dns.GetHostName();
    /// <summary>How long a node's heartbeat keeps it alive in the queue database; past it another node may take its mail.</summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(30);
    /// <summary>What this node does (`serve --roles`): "receive", "deliver" or "receive,deliver"; anything but both needs Store "postgres".</summary>
    public string Roles { get; set; } = NodeRoles.Both;
    public int Start { get; set; } = 1;
    /// <summary>
    /// One: each queue commits with its own fdatasync, so more queues split the same commits into more, smaller ones, and
    /// one relays fastest on a small machine (bench/README.md, "Queue count"). More slots come from Channels[].Concurrency.
    /// </summary>
    public int Count { get; set; } = 1;
    public int Max { get; set; } = 16;
    public double Load { get; set; } = 0.7;
    public bool Dynamic { get; set; }
    public TimeSpan IdleRetire { get; set; } = TimeSpan.FromMinutes(5);
    /// <summary>How often the Scaler samples queue load and takes a step (qmonitor's interval).</summary>
    public TimeSpan ScaleInterval { get; set; } = TimeSpan.FromSeconds(5);
    /// <summary>Spool segment size before a new one is started; bounds the space a stuck message pins.</summary>
    public ByteSize SegmentBytes { get; set; } = new(64L << 20);
    /// <summary>Free space the spool's file system keeps; below it (plus the declared SIZE) MAIL gets 452 4.3.1.</summary>
    public ByteSize MinFreeBytes { get; set; } = new(100L << 20);
    public const int DefaultActiveMessages = 20_000;
    /// <summary>
    /// Messages each queue works on at once with their envelope in memory (Postfix's qmgr_message_active_limit);
    /// the rest wait in the spool with only their recipients' state in memory.
    /// </summary>
    public int ActiveMessages { get; set; } = DefaultActiveMessages;
}

public sealed class ChannelOptions
{
    public const string RemoteChannelName = "remote";
    public const string MaildirTransport = "maildir";
    public const string SmtpTransport = "smtp";

    public string Name { get; set; } = "";
    public string Transport { get; set; } = SmtpTransport;
    public List<string> Domains { get; set; } = [];
    public int Concurrency { get; set; } = 20;
    public int DestinationConcurrency { get; set; } = 20;
    /// <summary>Connections a destination gets before slow start has learned anything (Postfix's initial_destination_concurrency).</summary>
    public int InitialDestinationConcurrency { get; set; } = 5;
    public int DestinationRatePerMinute { get; set; }
    /// <summary>Most recipients of one message sent to one destination in one transaction.</summary>
    public int BatchRecipients { get; set; } = 50;
    /// <summary>Higher first: under contention for slots and destinations this channel's due work starts before a lower one's.</summary>
    public int Priority { get; set; }
}

public sealed class DnsOptions
{
    /// <summary>"host[:port]" of the resolvers to ask, in order; none: the system's (/etc/resolv.conf).</summary>
    public List<string> Servers { get; set; } = [];
    /// <summary>How long one query waits for an answer; a timeout defers the mail (4.4.3) like SERVFAIL.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);
}

public sealed class DeliveryOptions
{
    public int Port { get; set; } = 25;
    /// <summary>Short (Postfix's smtp_connect_timeout): a dead MX host holds a delivery slot this long before the next is tried.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(30);
    // RFC 5321 §4.5.3.2's client timeouts, its minimums by default.
    public TimeSpan GreetingTimeout { get; set; } = TimeSpan.FromMinutes(5);
    public TimeSpan MailTimeout { get; set; } = TimeSpan.FromMinutes(5);
    public TimeSpan RcptTimeout { get; set; } = TimeSpan.FromMinutes(5);
    public TimeSpan DataInitTimeout { get; set; } = TimeSpan.FromMinutes(2);
    /// <summary>Each block of message data written (§4.5.3.2.5).</summary>
    public TimeSpan DataBlockTimeout { get; set; } = TimeSpan.FromMinutes(3);
    /// <summary>The reply to the final dot (§4.5.3.2.6).</summary>
    public TimeSpan DataTermTimeout { get; set; } = TimeSpan.FromMinutes(10);
    /// <summary>The other commands (EHLO, STARTTLS with its handshake, RSET, QUIT), which §4.5.3.2 does not name.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(5);
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(10);
    public int MessagesPerConnection { get; set; } = 1000;
    /// <summary>
    /// SMTP delivery in this many child processes (Postfix's smtp(8) processes), each with its own open-files
    /// limit, so outbound sessions are not capped by one process's; 0 (the default): in the server's own process.
    /// </summary>
    public int Workers { get; set; }
    public const int MaxWorkers = 64;
    /// <summary>Recipient domain (or "*" for the others) to "required", "opportunistic" (the default) or "none".</summary>
    public Dictionary<string, string> TlsPolicy { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Sender domain (the From: header's) to the key its outgoing mail is DKIM-signed with.</summary>
    public Dictionary<string, DkimKeyOptions> Dkim { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>An 8-bit message with a DKIM-Signature to a server without 8BITMIME: "bounce" (the default), "convert" or "send" (<see cref="SignedEightBit"/>).</summary>
    public string EightBitDkim { get; set; } = "bounce";

    /// <summary><see cref="EightBitDkim"/> as a choice (a method: not a key of its own when the options are serialised); config is validated at load.</summary>
    public SignedEightBit EightBitDkimChoice() => SignedEightBitNames.TryParse(EightBitDkim, out var choice) ? choice : SignedEightBit.Bounce;

    /// <summary>The level for mail to <paramref name="domain"/>: its own entry, else "*", else opportunistic. Config is validated at load.</summary>
    public OutboundTls TlsFor(string domain) =>
        (TlsPolicy.TryGetValue(domain, out var level) || TlsPolicy.TryGetValue("*", out level)) && OutboundTlsNames.TryParse(level, out var tls)
            ? tls : OutboundTls.Opportunistic;
}

public sealed class DkimKeyOptions
{
    /// <summary>The selector: the public key is published as TXT at &lt;Selector&gt;._domainkey.&lt;domain&gt; (RFC 6376 §3.6.2.1).</summary>
    public string Selector { get; set; } = "";
    /// <summary>PEM file holding the RSA private key.</summary>
    public string KeyFile { get; set; } = "";
}

public sealed class MailboxesOptions
{
    public string? Root { get; set; }
    /// <summary>"user@domain": once a domain has one, only its users, aliases and role accounts are accepted.</summary>
    public Dictionary<string, MailboxUserOptions> Users { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>"name@domain" (or "@domain", the domain's catch-all) to one or more local or remote addresses.</summary>
    public Dictionary<string, List<string>> Aliases { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>Virtual domains (qmail's virtualdomains): a domain's Maildirs under Root/DIRECTORY/user instead of Root/user.</summary>
    public Dictionary<string, string> Domains { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>Characters that start an address extension: "user+tag" reaches user ("+-" takes qmail's "user-tag" too).</summary>
    public string ExtensionSeparators { get; set; } = "+";
    /// <summary>Mail to user+tag goes into the Maildir++ folder .tag when it exists; true creates it when it does not.</summary>
    public bool CreateExtensionFolders { get; set; }
    /// <summary>Local parts every local domain accepts besides postmaster (RFC 5321 §4.5.1), per RFC 2142.</summary>
    public List<string> RoleAccounts { get; set; } = ["abuse", "MAILER-DAEMON"];
    /// <summary>When set, mail an alias forwards to another domain gets an SRS envelope sender at Srs.Domain; unset, the original sender is kept.</summary>
    public SrsOptions? Srs { get; set; }
    /// <summary>Octal permissions of the Maildir directories Sluice creates, e.g. "0750"; files get them without x ("0640"). Unset: 0700 and 0600.</summary>
    public string? Mode { get; set; }
    /// <summary>User (name or uid) given the Maildir directories and files Sluice creates, e.g. "vmail"; needs root.</summary>
    public string? Owner { get; set; }
    /// <summary>Group (name or gid) given the Maildir directories and files Sluice creates; needs root.</summary>
    public string? Group { get; set; }
}

public sealed class MailboxUserOptions
{
    public ByteSize? Quota { get; set; }
    /// <summary>A bcrypt hash (as `sluice passwd` writes): the user may then SMTP AUTH as user@domain.</summary>
    public string? PasswordHash { get; set; }
}

public sealed class SrsOptions
{
    public const int MinSecretLength = 16;
    /// <summary>Where rewritten senders live: a domain whose MX is this server (bounces to it come back here).</summary>
    public string Domain { get; set; } = "";
    /// <summary>The HMAC key: keep it secret and stable, or bounces to addresses made with the old one are refused.</summary>
    public string Secret { get; set; } = "";
    /// <summary>Days a rewritten address is honoured for bounces (libsrs2's default is 21).</summary>
    public int MaxAgeDays { get; set; } = Mailboxes.SenderRewriting.DefaultMaxAgeDays;
}

public sealed class RetryOptions
{
    public List<TimeSpan> Schedule { get; set; } =
        [TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(15), TimeSpan.FromHours(1), TimeSpan.FromHours(4)];
    public TimeSpan MaxQueueLifetime { get; set; } = TimeSpan.FromDays(5);
    /// <summary>After this long in the queue a still-deferred message gets one "delayed" DSN to its sender; null: never.</summary>
    public TimeSpan? DelayWarning { get; set; }
}

public sealed class HttpOptions
{
    public const int MinTokenLength = 16;
    /// <summary>Also serve the admin API on this address:port; every request there but /healthz and /readyz needs a token.</summary>
    public string? Listen { get; set; }
    /// <summary>"Authorization: Bearer TOKEN" on Listen allows every request (the Unix socket needs none).</summary>
    public string? Token { get; set; }
    /// <summary>The bearer token that allows only reading on Listen: status, metrics, the queue listings (GET and HEAD).</summary>
    public string? ReadToken { get; set; }
    /// <summary>When set, DataDir/admin.sock is 0660 and belongs to this group (name or gid), whose members may then use the local verbs; unset: 0600.</summary>
    public string? SocketGroup { get; set; }
}

public sealed class LogOptions
{
    /// <summary>Also append the delivery log to this file.</summary>
    public string? File { get; set; }
}
