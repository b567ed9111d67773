// Mail handed over by a local program (`sluice inject`) or the admin API (POST /api/v1/inject) enters
// through the server's own SMTP listener on loopback, so it meets exactly the checks, alias expansion,
// loop guard, free-space limit and durability of mail received over SMTP: one receive path, not two.
using System.Net;
using Sluice.Smtp;

namespace Sluice.Operate;

public static class LoopbackInjection
{
    /// <param name="QueueIds">The queue ids the server gave in its 250 reply to the data (several when aliases split the message).</param>
    /// <param name="Refused">Each recipient not accepted, with the server's reply.</param>
    public sealed record Outcome(IReadOnlyList<string> QueueIds, IReadOnlyList<(string Recipient, SmtpReply Reply)> Refused);

    private const string QueuedAs = "queued as ";

    /// <summary>One transaction with the listener at <paramref name="listener"/>; a wildcard address is reached on loopback.</summary>
    public static async Task<Outcome> SendAsync(IPEndPoint listener, string hostname, string sender, IReadOnlyList<string> recipients,
        ReadOnlyMemory<byte> message, CancellationToken ct)
    {
        await using var smtp = await SmtpClientConnection.ConnectAsync(HostOf(listener), listener.Port, new SmtpTimeouts { Connect = TimeSpan.FromSeconds(10) }, ct).ConfigureAwait(false);
        await smtp.HelloAsync(hostname, ct).ConfigureAwait(false);
        var replies = await smtp.SendAsync(sender, recipients, message, ct).ConfigureAwait(false);
        await smtp.QuitAsync().ConfigureAwait(false);
        var ids = replies.Where(r => r.IsPositive)
            .Select(r => string.Join(' ', r.Lines))
            .Select(text => text.IndexOf(QueuedAs, StringComparison.Ordinal) is var i and >= 0 ? text[(i + QueuedAs.Length)..] : "")
            .SelectMany(ids => ids.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Distinct().ToList();
        return new Outcome(ids, [.. recipients.Zip(replies).Where(r => !r.Second.IsPositive)]);
    }

    /// <summary>The address a local program connects to for a listener; a wildcard one is reached on loopback.</summary>
    public static string HostOf(IPEndPoint listener) =>
        listener.Address.Equals(IPAddress.Any) ? "127.0.0.1" : listener.Address.Equals(IPAddress.IPv6Any) ? "::1" : listener.Address.ToString();
}
