// The admin API's injection (POST /api/v1/inject) and its bearer token on Http.Listen, against a real
// server: the reply names the queue id once durable, refusals come back per recipient with the SMTP
// reply, bad requests are refused with the reason; over TCP a token for every request (the read token
// only reads), no state change from a browser page, and /healthz and /readyz open but silent.
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Sluice.Operate;
using Sluice.Testing;

namespace Sluice.EndToEnd;

public sealed class AdminApiTests
{
    private static HttpClient Admin(Instance sluice) => AdminSocket.Client(sluice.Dir.File("var/admin.sock"));

    [Fact]
    public async Task Inject_returns_the_queue_id_once_durable_and_the_message_is_delivered_with_the_headers_it_lacked()
    {
        await using var sluice = await Instance.StartAsync(c => c["Mailboxes"] = new
        {
            Users = new Dictionary<string, object> { ["alice@local.test"] = new { } },
        });
        using var http = Admin(sluice);

        using var reply = await http.PostAsJsonAsync("api/v1/inject", new
        {
            sender = "app@client.test",
            recipients = new[] { "bob@remote.test", "nobody@local.test" },
            content = "Subject: from the API\nTo: bob@remote.test\n\nhello\n",
        });

        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        var body = await reply.Content.ReadFromJsonAsync<JsonElement>();
        var id = Assert.Single(body.GetProperty("ids").EnumerateArray()).GetString();
        Assert.Matches(@"^\d+\.\d+$", id);
        var refused = Assert.Single(body.GetProperty("refused").EnumerateArray());
        Assert.Equal("nobody@local.test", refused.GetProperty("recipient").GetString());
        Assert.StartsWith("550 5.1.1", refused.GetProperty("reply").GetString(), StringComparison.Ordinal);
        await sluice.WaitForLogAsync($"new msg {id}"); // the todo stage logs it after the reply, on its own time

        await sluice.Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(30));
        var delivered = Assert.Single(sluice.Sink.Messages);
        Assert.Equal("app@client.test", delivered.Sender);
        Assert.Equal(["bob@remote.test"], delivered.Recipients);
        Assert.Contains("\r\nSubject: from the API\r\n", delivered.Data, StringComparison.Ordinal);
        Assert.Contains("\r\nMessage-ID: <", delivered.Data, StringComparison.Ordinal);
        Assert.Contains("\r\nDate: ", delivered.Data, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nhello\r\n", delivered.Data, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inject_refuses_what_it_cannot_queue_with_the_reason()
    {
        await using var sluice = await Instance.StartAsync(c => Instance.Smtp(c)["MaxMessageBytes"] = 2000);
        using var http = Admin(sluice);

        async Task<(HttpStatusCode, string)> Post(object request)
        {
            using var reply = await http.PostAsJsonAsync("api/v1/inject", request);
            return (reply.StatusCode, (await reply.Content.ReadFromJsonAsync<JsonElement>()).ToString());
        }

        var (status, text) = await Post(new { sender = "a@client.test", recipients = Array.Empty<string>(), content = "Subject: x\n\nx\n" });
        Assert.Equal((HttpStatusCode.BadRequest, true), (status, text.Contains("recipients: at least one address", StringComparison.Ordinal)));
        (status, text) = await Post(new { recipients = new[] { "b@remote.test" }, content = "x" });
        Assert.Equal((HttpStatusCode.BadRequest, true), (status, text.Contains("sender: required", StringComparison.Ordinal)));
        (status, text) = await Post(new { sender = "a@client.test", recipients = new[] { "b@remote.test" }, content = new string('x', 3000) });
        Assert.Equal((HttpStatusCode.RequestEntityTooLarge, true), (status, text.Contains("more than Smtp.MaxMessageBytes (2000)", StringComparison.Ordinal)));
        (status, text) = await Post(new { sender = "a@client.test", recipients = new[] { "not an address" }, content = "Subject: x\n\nx\n" });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Contains("\"reply\":\"501 5.1.3", text, StringComparison.Ordinal);
        Assert.Empty(sluice.Sink.Messages);
    }

    [Fact]
    public async Task Inject_with_the_spool_nearly_full_is_refused_for_now_and_succeeds_once_space_returns()
    {
        // Queue.MinFreeBytes of 1 PiB is never free: MAIL gets 452 4.3.1, as over SMTP.
        await using var sluice = await Instance.StartAsync(c => c["Queue"] = new { MinFreeBytes = 1L << 50 });
        using var http = Admin(sluice);
        var request = new { sender = "a@client.test", recipients = new[] { "b@remote.test" }, content = "Subject: x\n\nx\n" };

        using (var full = await http.PostAsJsonAsync("api/v1/inject", request))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, full.StatusCode);
            var body = await full.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Empty(body.GetProperty("ids").EnumerateArray());
            Assert.StartsWith("452 4.3.1", Assert.Single(body.GetProperty("refused").EnumerateArray()).GetProperty("reply").GetString(), StringComparison.Ordinal);
            Assert.DoesNotContain(sluice.Process.Log, l => l.Contains("new msg", StringComparison.Ordinal));
        }

        // Space returns (here: the threshold is lowered and reloaded): the same request is queued and delivered.
        sluice.Config["Queue"] = new { MinFreeBytes = 1 };
        await sluice.WriteConfigAsync();
        var (exit, _, stderr) = await sluice.RunVerbAsync("reload");
        Assert.True(exit == 0, stderr);
        await sluice.WaitForLogAsync("reload: configuration reloaded");
        using (var ok = await http.PostAsJsonAsync("api/v1/inject", request)) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        await sluice.Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(30));
    }

    private const string FullToken = "0123456789abcdef0123456789abcdef";
    private const string ReadToken = "fedcba9876543210fedcba9876543210";

    /// <summary>A server with both tokens on a free loopback port, and a client for that port that sends no token yet.</summary>
    private static async Task<(Instance Sluice, HttpClient Tcp)> StartWithTokensAsync(Action<Dictionary<string, object>>? adjust = null)
    {
        var port = LoopbackPort.Free();
        var sluice = await Instance.StartAsync(c =>
        {
            c["Http"] = new { Listen = $"127.0.0.1:{port}", Token = FullToken, ReadToken };
            adjust?.Invoke(c);
        });
        return (sluice, new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") });
    }

    private static HttpRequestMessage Post(string path, string? token, string? origin = null, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (origin is not null) request.Headers.Add("Origin", origin);
        return request;
    }

    private static HttpRequestMessage Get(string path, string? token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return request;
    }

    [Fact]
    public async Task Over_Http_Listen_every_request_needs_a_token_on_loopback_too_and_the_read_token_only_reads()
    {
        var (sluice, tcp) = await StartWithTokensAsync();
        await using var _ = sluice;
        using var __ = tcp;

        foreach (var request in new[] { Get("api/v1/status", null), Get("metrics", null), Post("api/v1/queue/flush", null) })
        {
            using var bare = await tcp.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, bare.StatusCode);
            var challenge = Assert.Single(bare.Headers.WwwAuthenticate);
            Assert.Equal(("Bearer", "realm=\"sluice\""), (challenge.Scheme, challenge.Parameter));
            Assert.Contains("send Authorization: Bearer TOKEN", await bare.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var wrong = await tcp.SendAsync(Get("api/v1/status", FullToken[..^1] + "0")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
            Assert.Equal("realm=\"sluice\", error=\"invalid_token\"", Assert.Single(wrong.Headers.WwwAuthenticate).Parameter);
        }

        // The read token: status, metrics and the listings; nothing that changes state (RFC 6750 §3.1 insufficient_scope).
        using (var status = await tcp.SendAsync(Get("api/v1/status", ReadToken)))
            Assert.Contains("\"queues\":", await status.EnsureSuccessStatusCode().Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using (var metrics = await tcp.SendAsync(Get("metrics", ReadToken)))
            Assert.Contains("sluice_queue_messages", await metrics.EnsureSuccessStatusCode().Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using (var listing = await tcp.SendAsync(Get("api/v1/queue/messages", ReadToken))) Assert.Equal(HttpStatusCode.OK, listing.StatusCode);
        foreach (var path in new[] { "api/v1/queue/flush", "api/v1/queue/bounce?all=true", "api/v1/reload" })
        {
            using var refused = await tcp.SendAsync(Post(path, ReadToken));
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Equal("realm=\"sluice\", error=\"insufficient_scope\"", Assert.Single(refused.Headers.WwwAuthenticate).Parameter);
            Assert.Contains("POST needs Http.Token", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // The full token: everything.
        using (var status = await tcp.SendAsync(Get("api/v1/status", FullToken))) Assert.Equal(HttpStatusCode.OK, status.StatusCode);
        using (var flush = await tcp.SendAsync(Post("api/v1/queue/flush", FullToken)))
            Assert.Contains("deferred mail is due now", await flush.EnsureSuccessStatusCode().Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The Unix socket is guarded by its file permissions: no token there.
        using var socket = Admin(sluice);
        Assert.Contains("\"queues\":", await socket.GetStringAsync("api/v1/status"), StringComparison.Ordinal);
        using (var flush = await socket.PostAsync("api/v1/queue/flush", null)) Assert.Equal(HttpStatusCode.OK, flush.StatusCode);
    }

    [Fact]
    public async Task A_state_changing_request_from_a_browser_page_is_refused_even_with_the_token()
    {
        var (sluice, tcp) = await StartWithTokensAsync();
        await using var _ = sluice;
        using var __ = tcp;
        var own = tcp.BaseAddress!.GetLeftPart(UriPartial.Authority);

        foreach (var origin in new[] { "http://evil.test", "null", own.Replace("127.0.0.1", "localhost", StringComparison.Ordinal) })
            using (var cross = await tcp.SendAsync(Post("api/v1/queue/flush", FullToken, origin)))
            {
                Assert.Equal((origin, HttpStatusCode.Forbidden), (origin, cross.StatusCode));
                Assert.Contains($"Origin {origin} is not {own}", await cross.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
        using (var same = await tcp.SendAsync(Post("api/v1/queue/flush", FullToken, own))) Assert.Equal(HttpStatusCode.OK, same.StatusCode);

        // What a form (or a fetch without CORS) can send is not JSON: refused before the endpoint reads it.
        var inject = """{"sender":"a@client.test","recipients":["b@remote.test"],"content":"Subject: x\n\nx\n"}""";
        foreach (var type in new[] { "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x" })
        {
            var body = new StringContent(inject);
            body.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(type);
            using var form = await tcp.SendAsync(Post("api/v1/inject", FullToken, content: body));
            Assert.Equal((type, HttpStatusCode.UnsupportedMediaType), (type, form.StatusCode));
        }
        Assert.Empty(sluice.Sink.Messages);
        using (var json = await tcp.SendAsync(Post("api/v1/inject", FullToken, own, new StringContent(inject, System.Text.Encoding.UTF8, "application/json"))))
            Assert.Equal(HttpStatusCode.OK, json.StatusCode);
        await sluice.Sink.WaitForCountAsync(1, TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Healthz_and_readyz_answer_without_a_token_and_say_nothing_else()
    {
        var (sluice, tcp) = await StartWithTokensAsync();
        await using var _ = sluice;
        using var __ = tcp;

        foreach (var (path, body) in new[] { ("healthz", "ok\n"), ("readyz", "ready\n") })
        {
            using var reply = await tcp.GetAsync(path);
            Assert.Equal((path, HttpStatusCode.OK, body), (path, reply.StatusCode, await reply.Content.ReadAsStringAsync()));
            // Nothing about the software either: no Server header.
            Assert.Equal(["Content-Length", "Content-Type", "Date"],
                reply.Headers.Concat(reply.Content.Headers).Select(h => h.Key).Order(StringComparer.Ordinal));
        }

        // A spool that takes no file (its directory replaced by a file, as when a mount went away): not ready, and no why.
        var queueBase = sluice.Dir.File("var/queue");
        Directory.Move(queueBase, queueBase + ".away");
        await File.WriteAllTextAsync(queueBase, "");
        using (var notReady = await tcp.GetAsync("readyz"))
            Assert.Equal((HttpStatusCode.ServiceUnavailable, "not ready\n"), (notReady.StatusCode, await notReady.Content.ReadAsStringAsync()));
        using (var alive = await tcp.GetAsync("healthz")) Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
        File.Delete(queueBase);
        Directory.Move(queueBase + ".away", queueBase);
        using (var ready = await tcp.GetAsync("readyz")) Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }

    [Fact]
    public async Task Http_Listen_without_a_token_starts_with_a_warning_and_refuses_all_but_healthz_and_readyz()
    {
        var port = LoopbackPort.Free();
        await using var sluice = await Instance.StartAsync(c => c["Http"] = new { Listen = $"127.0.0.1:{port}" });
        await sluice.WaitForLogAsync("warning: Http.Listen has no Http.Token or Http.ReadToken");
        using var tcp = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
        foreach (var path in new[] { "api/v1/status", "metrics" })
            using (var refused = await tcp.GetAsync(path)) Assert.Equal((path, HttpStatusCode.Unauthorized), (path, refused.StatusCode));
        using (var flush = await tcp.PostAsync("api/v1/queue/flush", null)) Assert.Equal(HttpStatusCode.Unauthorized, flush.StatusCode);
        using (var alive = await tcp.GetAsync("healthz")) Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
        using (var status = await Admin(sluice).GetAsync("api/v1/status")) Assert.Equal(HttpStatusCode.OK, status.StatusCode); // the Unix socket is the operator's
    }

    [Theory]
    [InlineData("""{ "Listen": "127.0.0.1:PORT", "Token": "0123456789abcde" }""", "key 'Http:Token': must be at least 16 characters")]
    [InlineData("""{ "Listen": "127.0.0.1:PORT", "ReadToken": "short" }""", "key 'Http:ReadToken': must be at least 16 characters")]
    public async Task An_admin_API_token_too_short_is_refused_at_start(string http, string problem)
    {
        using var dir = new TempDirectory();
        var config = dir.File("sluice.json");
        await File.WriteAllTextAsync(config, $$"""{ "DataDir": "{{dir.File("var")}}", "Http": {{http.Replace("PORT", LoopbackPort.Free().ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)}} }""");
        var (exit, _, stderr) = await SluiceProcess.RunAsync(dir.Path, "", "serve", "--config", config);
        Assert.Equal(78, exit);
        Assert.Contains($"{config}: {problem}", stderr, StringComparison.Ordinal);
    }
}
