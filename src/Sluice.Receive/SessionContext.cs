// What every session started by one listener shares: policy, where accepted mail goes, the
// listener's role, TLS certificate and AUTH users, and whether the server is under stress.
using System.Net.Security;
using Sluice.Core.Configuration;
using Sluice.Queue;

namespace Sluice.Receive;

public sealed record SessionContext
{
    public required ReceivePolicy Policy { get; init; }
    public required IMessageAcceptor Acceptor { get; init; }
    public TimeProvider Time { get; init; } = TimeProvider.System;
    public SmtpRole Role { get; init; } = SmtpRole.Smtp;
    /// <summary>STARTTLS is offered (and port 465 works) only with a certificate.</summary>
    public SslStreamCertificateContext? Certificate { get; init; }
    /// <summary>AUTH is offered only with users to check, and only under TLS.</summary>
    public ISmtpAuthenticator? Users { get; init; }
    public Action<string> Log { get; init; } = _ => { };
    /// <summary>True while most connection slots are taken: idle clients get the short timeout (Postfix's stress mode).</summary>
    public Func<bool> UnderStress { get; init; } = () => false;
}

/// <summary>Checks AUTH credentials (RFC 4954); slow on purpose, so it is asynchronous.</summary>
public interface ISmtpAuthenticator
{
    Task<bool> VerifyAsync(string user, string password);
}
