// The From: that `inject` and `sendmail -F` add to a message without one: the display name quoted or
// RFC 2047-encoded as RFC 5322 §3.4 needs it, and never a second From: when the message has one.
using System.Text;
using Sluice.Receive;

namespace Sluice.Receive.Tests;

public sealed class InjectedMessageTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 8, 3, 0, 0, TimeSpan.Zero);

    private static string Prepare(string input, string? name) =>
        Encoding.UTF8.GetString(InjectedMessage.Prepare(Encoding.UTF8.GetBytes(input), "cron@example.test", false, "mx.example.test", Now, name).Message);

    [Theory]
    [InlineData(null, "From: <cron@example.test>\r\n")]
    [InlineData("Cron Daemon", "From: Cron Daemon <cron@example.test>\r\n")]
    [InlineData("Daemon, Cron", "From: \"Daemon, Cron\" <cron@example.test>\r\n")]
    [InlineData("Crön", "From: =?utf-8?b?Q3LDtm4=?= <cron@example.test>\r\n")]
    public void A_message_without_from_gets_one_naming_the_sender(string? name, string from)
    {
        var message = Prepare("Subject: x\n\nbody\n", name);
        Assert.StartsWith("Subject: x\r\n" + from, message, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nbody\r\n", message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_message_with_from_keeps_it_and_the_name_is_not_used()
    {
        var message = Prepare("From: Someone <someone@example.test>\nSubject: x\n\nbody\n", "Cron Daemon");
        Assert.Single(message.Split("\r\n"), l => l.StartsWith("From:", StringComparison.Ordinal));
        Assert.StartsWith("From: Someone <someone@example.test>\r\n", message, StringComparison.Ordinal);
    }
}
