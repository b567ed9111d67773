// A bad configuration stops start-up naming the file (or variable), the key and the reason.
using Sluice.Core.Configuration;
using Sluice.Testing;

namespace Sluice.Core.Tests;

public sealed class ConfigLoaderTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private static readonly Dictionary<string, string?> NoEnvironment = [];

    private string Write(string json)
    {
        var path = _dir.File("sluice.json");
        File.WriteAllText(path, json);
        return path;
    }

    private ConfigurationException Fails(string json, Dictionary<string, string?>? env = null) =>
        Assert.Throws<ConfigurationException>(() => ConfigLoader.Load(Write(json), env ?? NoEnvironment));

    [Fact]
    public void No_file_gives_the_embedded_defaults()
    {
        var o = ConfigLoader.Load(null, NoEnvironment);
        Assert.Equal(["127.0.0.1:2525"], o.Smtp.Listen);
        Assert.Equal(Path.GetFullPath("var/queue"), o.QueueBase);
        Assert.Equal(Path.GetFullPath("var/maildirs"), o.MailboxRoot);
        Assert.Equal(["local", "remote"], o.Channels.Select(c => c.Name));
        Assert.Equal(["localhost"], o.Channels[0].Domains);
        Assert.Equal((System.Net.Dns.GetHostName(), TimeSpan.FromSeconds(30), "receive,deliver"), (o.Queue.Node, o.Queue.Lease, o.Queue.Roles));
        Assert.Equal((1, 16, false), (o.Queue.Count, o.Queue.Max, o.Queue.Dynamic)); // one queue, as measured fastest (README, Queues)
    }

    [Theory]
    [InlineData("""{ "User": "no-such-sluice-user" }""", "key 'User': no user \"no-such-sluice-user\" in the password database")]
    [InlineData("""{ "User": "nobody", "Group": "no-such-sluice-group" }""", "key 'Group': no group \"no-such-sluice-group\" in the group database")]
    [InlineData("""{ "Group": "nogroup" }""", "key 'Group': goes with User")]
    public void User_and_Group_must_exist_and_Group_needs_User(string json, string problem) =>
        Assert.Contains(problem, Fails(json).Message, StringComparison.Ordinal);

    [Fact]
    public void An_existing_User_and_Group_load()
    {
        var o = ConfigLoader.Load(Write("""{ "User": "nobody", "Group": "nogroup" }"""), NoEnvironment);
        Assert.Equal(("nobody", "nogroup"), (o.User, o.Group));
    }

    [Fact]
    public void The_seeds_QUEUE_COUNT_alone_overrides_the_default_count()
    {
        var o = ConfigLoader.Load(null, new Dictionary<string, string?> { ["QUEUE_COUNT"] = "4" });
        Assert.Equal(4, o.Queue.Count);
    }

    [Fact]
    public void A_postgres_node_takes_its_name_lease_and_roles()
    {
        var o = ConfigLoader.Load(Write("""
            { "Queue": { "Store": "postgres", "ConnectionString": "Host=db", "Node": "mx-2.farm_a", "Lease": "2500ms", "Roles": " Deliver " } }
            """), NoEnvironment);
        Assert.Equal(("mx-2.farm_a", TimeSpan.FromMilliseconds(2500)), (o.Queue.Node, o.Queue.Lease));
        Assert.Equal(NodeRole.Deliver, NodeRoles.Parse(o.Queue.Roles));
    }

    [Fact]
    public void The_design_example_loads_with_its_values()
    {
        var o = ConfigLoader.Load(Write("""
            { "Hostname": "mx.example.test", "DataDir": "var",
              "Smtp": { "Listen": ["127.0.0.1:2525"], "RelayNetworks": ["127.0.0.0/8", "::1/128"], "LocalDomains": ["localhost"], "MaxMessageBytes": 52428800, "MaxRecipients": 1000 },
              "Queue": { "Base": "var/queue", "Start": 1, "Count": 4, "Max": 16, "Load": 0.7, "Dynamic": false, "IdleRetire": "5m" },
              "Channels": [ { "Name": "local", "Transport": "maildir", "Domains": ["localhost"], "Concurrency": 64 },
                            { "Name": "remote", "Transport": "smtp", "Concurrency": 2000, "DestinationConcurrency": 20 },
                            { "Name": "bulk", "Transport": "smtp", "Domains": ["big.example"], "Concurrency": 500, "DestinationConcurrency": 5, "DestinationRatePerMinute": 600 } ],
              "Routes": { "*": "127.0.0.1:2626" }, "Dns": { "Servers": ["127.0.0.1:5353"] }, "Delivery": { "Port": 25 },
              "Mailboxes": { "Root": "var/maildirs", "Users": { "alice@local.test": { "Quota": "100MB" } }, "Aliases": { "team@local.test": ["alice@local.test", "bob@remote.example"] } },
              "Retry": { "Schedule": ["1m", "5m", "15m", "1h", "4h"], "MaxQueueLifetime": "5d" }, "Http": { "Listen": "127.0.0.1:8025", "Token": "0123456789abcdef" } }
            """), NoEnvironment);
        Assert.Equal(3, o.Channels.Count);
        Assert.Equal(600, o.Channels[2].DestinationRatePerMinute);
        Assert.Equal(TimeSpan.FromMinutes(5), o.Queue.IdleRetire);
        Assert.Equal(TimeSpan.FromDays(5), o.Retry.MaxQueueLifetime);
        Assert.Equal(100L << 20, o.Mailboxes.Users["alice@local.test"].Quota!.Value.Bytes);
        Assert.Equal("127.0.0.1:2626", o.Routes["*"]);
    }

    [Fact]
    public void Admin_API_tokens_are_long_enough_and_two_scopes()
    {
        var o = ConfigLoader.Load(Write("""{ "Http": { "Listen": "0.0.0.0:8025", "Token": "0123456789abcdef", "ReadToken": "fedcba9876543210" } }"""), NoEnvironment);
        Assert.Equal(("0123456789abcdef", "fedcba9876543210"), (o.Http.Token, o.Http.ReadToken));
        Assert.Equal("0123456789abcdef", ConfigLoader.Load(Write("""{ "Http": { "Listen": "127.0.0.1:8025", "ReadToken": "0123456789abcdef" } }"""), NoEnvironment).Http.ReadToken);
        // Without a token the listener starts (the server warns) and refuses every request but /healthz and /readyz.
        Assert.Null(ConfigLoader.Load(Write("""{ "Http": { "Listen": "127.0.0.1:8025" } }"""), NoEnvironment).Http.Token);
        Assert.Contains("key 'Http:Token': must be at least 16 characters", Fails("""{ "Http": { "Token": "short" } }""").Message, StringComparison.Ordinal);
        Assert.Contains("key 'Http:ReadToken': must be at least 16 characters", Fails("""{ "Http": { "ReadToken": "0123456789abcde" } }""").Message, StringComparison.Ordinal);
        Assert.Contains("key 'Http:ReadToken': must differ from Http:Token",
            Fails("""{ "Http": { "Token": "0123456789abcdef", "ReadToken": "0123456789abcdef" } }""").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Durations_take_milliseconds_too()
    {
        var o = ConfigLoader.Load(Write("""{ "Queue": { "ScaleInterval": "250ms", "IdleRetire": "1.5s" } }"""), NoEnvironment);
        Assert.Equal(TimeSpan.FromMilliseconds(250), o.Queue.ScaleInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), o.Queue.IdleRetire);
    }

    [Fact]
    public void A_syntax_error_names_the_file_and_line()
    {
        var e = Fails("{\n  \"Hostname\": \"x\",\n  \"Queue\": { \"Count\": 4, }\n  oops\n}");
        Assert.Contains(_dir.File("sluice.json"), e.Message, StringComparison.Ordinal);
        Assert.Contains("not valid JSON", e.Message, StringComparison.Ordinal);
        Assert.Contains("line ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_key_is_named_with_its_path()
    {
        var e = Fails("""{ "Queue": { "Cuont": 4 } }""");
        Assert.Contains("key 'Queue:Cuont': unknown key", e.Message, StringComparison.Ordinal);
        Assert.Contains("Count", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "Queue": { "Count": "four" } }""", "key 'Queue:Count': \"four\" is not a whole number")]
    [InlineData("""{ "Queue": { "Dynamic": "maybe" } }""", "key 'Queue:Dynamic': \"maybe\" is not true or false")]
    [InlineData("""{ "Retry": { "MaxQueueLifetime": "soon" } }""", "key 'Retry:MaxQueueLifetime': \"soon\" is not a duration")]
    [InlineData("""{ "Smtp": { "Listen": "127.0.0.1:25" } }""", "key 'Smtp:Listen': expected an array")]
    [InlineData("""{ "Queue": 4 }""", "key 'Queue': expected an object")]
    public void A_value_of_the_wrong_type_is_named_with_what_was_expected(string json, string expected)
    {
        Assert.Contains(expected, Fails(json).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "Queue": { "Count": 0 } }""", "key 'Queue:Count': must be at least 1")]
    [InlineData("""{ "Queue": { "Count": 8, "Max": 4 } }""", "key 'Queue:Max': must be at least Queue:Count (8)")]
    [InlineData("""{ "Queue": { "Load": 1.5 } }""", "key 'Queue:Load': must be more than 0 and at most 1")]
    [InlineData("""{ "Queue": { "Store": "mysql" } }""", "key 'Queue:Store': \"mysql\" is not a queue store (file or postgres)")]
    [InlineData("""{ "Queue": { "Store": "postgres" } }""", "key 'Queue:ConnectionString': is required with Queue:Store \"postgres\"")]
    [InlineData("""{ "Queue": { "Store": "postgres", "ConnectionString": "Database=sluice" } }""", "key 'Queue:ConnectionString': names no Host")]
    [InlineData("""{ "Queue": { "Store": "postgres", "ConnectionString": "Host" } }""", "key 'Queue:ConnectionString': is not a connection string of key=value pairs")]
    [InlineData("""{ "Queue": { "Store": "postgres", "ConnectionString": "Host=db", "Node": "mx 1" } }""", "key 'Queue:Node': \"mx 1\" is not a node name (1 to 63 letters, digits, dots, hyphens, underscores)")]
    [InlineData("""{ "Queue": { "Store": "postgres", "ConnectionString": "Host=db", "Node": "" } }""", "key 'Queue:Node': \"\" is not a node name")]
    [InlineData("""{ "Queue": { "Lease": "500ms" } }""", "key 'Queue:Lease': must be at least 1s")]
    [InlineData("""{ "Queue": { "Store": "postgres", "ConnectionString": "Host=db", "Roles": "receive,relay" } }""", "key 'Queue:Roles': \"receive,relay\" is not a list of roles")]
    [InlineData("""{ "Queue": { "Roles": "receive" } }""", "key 'Queue:Roles': a node with the file spool receives and delivers")]
    [InlineData("""{ "Smtp": { "Listen": ["localhost:25"] } }""", "key 'Smtp:Listen:0'")]
    [InlineData("""{ "Smtp": { "RelayNetworks": ["10.0.0.0/99"] } }""", "key 'Smtp:RelayNetworks:0'")]
    [InlineData("""{ "Channels": [ { "Name": "local", "Transport": "pigeon" }, { "Name": "remote" } ] }""", "key 'Channels:0:Transport': \"pigeon\" is not a transport")]
    [InlineData("""{ "Channels": [ { "Name": "local", "Transport": "maildir" } ] }""", "no channel is named \"remote\"")]
    [InlineData("""{ "Channels": [ { "Name": "a", "Domains": ["x.test"] }, { "Name": "remote", "Domains": ["x.test"] } ] }""", "\"x.test\" is already routed to channel \"a\"")]
    [InlineData("""{ "Routes": { "*": "host:99999" } }""", "key 'Routes:*'")]
    [InlineData("""{ "Retry": { "Schedule": [] } }""", "key 'Retry:Schedule': needs at least one interval")]
    [InlineData("""{ "Delivery": { "Port": 0 } }""", "key 'Delivery:Port': must be a TCP port")]
    [InlineData("""{ "Delivery": { "Workers": 65 } }""", "key 'Delivery:Workers': must be from 0 (deliver in the server's own process) to 64 child processes")]
    [InlineData("""{ "Delivery": { "Workers": -1 } }""", "key 'Delivery:Workers': must be from 0")]
    [InlineData("""{ "Delivery": { "TlsPolicy": { "bank.test": "mandatory" } } }""", "key 'Delivery:TlsPolicy:bank.test': \"bank.test\" → \"mandatory\" must map a domain or * to required, opportunistic or none")]
    [InlineData("""{ "Delivery": { "TlsPolicy": { "*": "1" } } }""", "key 'Delivery:TlsPolicy:*'")]
    [InlineData("""{ "Delivery": { "EightBitDkim": "drop" } }""", "key 'Delivery:EightBitDkim': \"drop\" must be bounce, convert or send")]
    [InlineData("""{ "Delivery": { "EightBitDkim": "2" } }""", "key 'Delivery:EightBitDkim'")]
    [InlineData("""{ "Dns": { "Servers": ["127.0.0.1:99999"] } }""", "key 'Dns:Servers:0': \"127.0.0.1:99999\" is not host[:port]")]
    [InlineData("""{ "Dns": { "Timeout": "0s" } }""", "key 'Dns:Timeout': must be longer than zero")]
    [InlineData("""{ "Delivery": { "Dkim": { "sign.test": { "Selector": "s1", "KeyFile": "/nonexistent/dkim.pem" } } } }""", "key 'Delivery:Dkim:sign.test:KeyFile': \"/nonexistent/dkim.pem\" is not a file")]
    [InlineData("""{ "Delivery": { "Dkim": { "sign.test": { "KeyFile": "/nonexistent/dkim.pem" } } } }""", "key 'Delivery:Dkim:sign.test:Selector'")]
    public void An_impossible_value_is_named_with_the_reason(string json, string expected)
    {
        var e = Fails(json);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.StartsWith(_dir.File("sluice.json") + ": ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_problem_is_reported_not_only_the_first()
    {
        var lines = Fails("""{ "Queue": { "Count": 0, "Load": 2 }, "Bogus": 1 }""").Message.Split(Environment.NewLine);
        Assert.Equal(3, lines.Length);
    }

    [Fact]
    public void A_missing_file_is_an_error_not_the_defaults()
    {
        var e = Assert.Throws<ConfigurationException>(() => ConfigLoader.Load(_dir.File("absent.json"), NoEnvironment));
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Environment_overrides_the_file_and_queue_variables_override_both()
    {
        var env = new Dictionary<string, string?>
        {
            ["SLUICE__Smtp__Listen__0"] = "127.0.0.1:2600",
            ["SLUICE__Queue__Count"] = "3",
            ["QUEUE_COUNT"] = "6",
            ["QUEUE_BASE"] = _dir.File("qbase"),
            ["QUEUE_START"] = "0",
            ["QUEUE_MAX"] = "12",
            ["QUEUE_LOAD"] = "0.5",
        };
        var o = ConfigLoader.Load(Write("""{ "Smtp": { "Listen": ["127.0.0.1:2525"] }, "Queue": { "Count": 2 } }"""), env);
        Assert.Equal(["127.0.0.1:2600"], o.Smtp.Listen);
        Assert.Equal(6, o.Queue.Count);
        Assert.Equal(0, o.Queue.Start);
        Assert.Equal(12, o.Queue.Max);
        Assert.Equal(0.5, o.Queue.Load);
        Assert.Equal(_dir.File("qbase"), o.QueueBase);
    }

    [Fact]
    public void A_bad_environment_value_names_the_variable()
    {
        var e = Assert.Throws<ConfigurationException>(() => ConfigLoader.Load(null, new Dictionary<string, string?> { ["QUEUE_LOAD"] = "high" }));
        Assert.StartsWith("environment QUEUE_LOAD: key 'Queue:Load'", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ConfigurationException>(() => ConfigLoader.Load(null, new Dictionary<string, string?> { ["SLUICE__Delivery__Port"] = "70000" }));
        Assert.StartsWith("environment SLUICE__Delivery__Port: key 'Delivery:Port'", e.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _dir.Dispose();
}
