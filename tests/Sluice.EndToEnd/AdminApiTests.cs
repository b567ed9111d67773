// The admin API's injection (POST /api/v1/inject) and its bearer token on Http.Listen, against a real
// server: the reply names the queue id once durable, refusals come back per recipient with the SMTP
// reply, bad requests are refused with the reason, and TCP requests without the token get 401.
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

    [Fact]
    public async Task With_a_token_Http_Listen_answers_only_requests_that_carry_it_and_the_socket_needs_none()
    {
        var port = LoopbackPort.Free();
        const string token = "0123456789abcdef0123456789abcdef";
        await using var sluice = await Instance.StartAsync(c => c["Http"] = new { Listen = $"127.0.0.1:{port}", Token = token });
        using var tcp = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };

        using (var bare = await tcp.GetAsync("metrics"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, bare.StatusCode);
            Assert.Equal("Bearer", Assert.Single(bare.Headers.WwwAuthenticate).Scheme);
        }
        tcp.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token[..^1] + "0");
        using (var wrong = await tcp.GetAsync("api/v1/status")) Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        tcp.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        Assert.Contains("sluice_queue_messages", await tcp.GetStringAsync("metrics"), StringComparison.Ordinal);

        using var socket = Admin(sluice);
        Assert.Contains("\"queues\":", await socket.GetStringAsync("api/v1/status"), StringComparison.Ordinal);
    }
}
