// The operator contract's configuration (design.md §3): one typed options tree, bound from JSON,
// SLUICE__ environment variables and the seed's QUEUE_* variables, validated once at start.
namespace Sluice.Core.Configuration;

public sealed class SluiceOptions
{
    public string Hostname { get; set; } = "localhost";
    public string DataDir { get; set; } = "var";
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
}

public sealed class SmtpOptions
{
    public List<string> Listen { get; set; } = ["127.0.0.1:2525"];
    public List<string> RelayNetworks { get; set; } = ["127.0.0.0/8", "::1/128"];
    public List<string> LocalDomains { get; set; } = ["localhost"];
    public long MaxMessageBytes { get; set; } = 52_428_800;
    public int MaxRecipients { get; set; } = 1000;
}

public sealed class QueueOptions
{
    public string? Base { get; set; }
    public int Start { get; set; } = 1;
    public int Count { get; set; } = 4;
    public int Max { get; set; } = 16;
    public double Load { get; set; } = 0.7;
    public bool Dynamic { get; set; }
    public TimeSpan IdleRetire { get; set; } = TimeSpan.FromMinutes(5);
    /// <summary>Spool segment size before a new one is started; bounds the space a stuck message pins.</summary>
    public ByteSize SegmentBytes { get; set; } = new(64L << 20);
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
    public int DestinationRatePerMinute { get; set; }
    /// <summary>Most recipients of one message sent to one destination in one transaction.</summary>
    public int BatchRecipients { get; set; } = 50;
}

public sealed class DnsOptions
{
    public List<string> Servers { get; set; } = [];
}

public sealed class DeliveryOptions
{
    public int Port { get; set; } = 25;
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);
    /// <summary>RFC 5321 §4.5.3.2 timeouts are minutes; one value here bounds every command reply wait.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(5);
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(10);
    public int MessagesPerConnection { get; set; } = 1000;
}

public sealed class MailboxesOptions
{
    public string? Root { get; set; }
    public Dictionary<string, MailboxUserOptions> Users { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    public Dictionary<string, List<string>> Aliases { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

public sealed class MailboxUserOptions
{
    public ByteSize? Quota { get; set; }
}

public sealed class RetryOptions
{
    public List<TimeSpan> Schedule { get; set; } =
        [TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(15), TimeSpan.FromHours(1), TimeSpan.FromHours(4)];
    public TimeSpan MaxQueueLifetime { get; set; } = TimeSpan.FromDays(5);
}

public sealed class HttpOptions
{
    public string? Listen { get; set; }
}

public sealed class LogOptions
{
    /// <summary>Also append the delivery log to this file.</summary>
    public string? File { get; set; }
}
