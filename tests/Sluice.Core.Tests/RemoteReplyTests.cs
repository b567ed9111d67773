// A next hop's reply as a DSN reports it (RFC 3464 §2.3.5 Remote-MTA names the host, not its
// address) and as the spool keeps it: the log text "PEER said: REPLY" reads back as the same reply,
// and no text of our own making ever reads as a remote reply.
using Sluice.Core.Mail;

namespace Sluice.Core.Tests;

public sealed class RemoteReplyTests
{
    [Theory]
    [InlineData("in.mx.example.test[192.0.2.7]:25", "in.mx.example.test")]
    [InlineData("in.mx.example.test[2001:db8::7]:25", "in.mx.example.test")]
    [InlineData("127.0.0.1:2626", "127.0.0.1")]
    [InlineData("relay.example.test:587", "relay.example.test")]
    [InlineData("::1:2626", "::1")]
    public void The_remote_MTA_is_the_host_name_without_address_or_port(string peer, string mta) =>
        Assert.Equal(mta, new RemoteReply(peer, "250 2.0.0 ok").Mta);

    [Theory]
    [InlineData("in.mx.example.test[192.0.2.7]:25", "550 5.1.1 <x@y>: no such user")]
    [InlineData("127.0.0.1:2626", "451-4.2.0 busy 451 4.2.0 try later")]
    public void The_log_text_reads_back_as_the_same_reply(string peer, string reply)
    {
        var remote = new RemoteReply(peer, reply);
        Assert.Equal($"{peer} said: {reply}", remote.ToString());
        Assert.Equal(remote, RemoteReply.FromText(remote.ToString()));
    }

    [Fact]
    public void An_outcome_with_its_reply_crosses_to_the_server_from_a_delivery_worker_whole()
    {
        var remote = new RemoteReply("in.mx.example.test[192.0.2.7]:25", "550 5.1.1 <x@y>: no such user");
        RecipientResult[] sent = [RecipientResult.Failed(remote.ToString()) with { Remote = remote }, RecipientResult.Deferred("451 4.4.1 ours")];
        var received = System.Text.Json.JsonSerializer.Deserialize<RecipientResult[]>(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(sent));
        Assert.Equal(sent, received);
    }

    [Theory]
    [InlineData("451 4.4.1 mx[192.0.2.7]:25: connect to 192.0.2.7:25 failed: Connection refused")]
    [InlineData("message expired after 5 days in the queue; last error: 127.0.0.1:2626 said: 451 4.2.0 busy")]
    [InlineData("451 4.4.1 delivery to 127.0.0.1:2626 suspended until 12:00:00Z after 3 failures (last: 127.0.0.1:2626 said: 421 4.3.2 bye)")]
    [InlineData("553 5.6.7 SMTPUTF8 required but not offered by 127.0.0.1:2626")]
    [InlineData("host said: nothing like a reply")]
    [InlineData("")]
    public void A_text_of_our_own_is_no_remote_reply(string text) => Assert.Null(RemoteReply.FromText(text));
}
