// AUTH PLAIN and LOGIN (RFC 4954, RFC 4616), offered only over TLS so no password crosses the
// wire in the clear. An authenticated session may relay, and its identity is logged and traced.
// A mailbox user with a password hash in Mailboxes.Users logs in as user@domain; other names are
// looked up in the smtp-users file.
using Sluice.Receive.Auth;

namespace Sluice.Receive;

public sealed partial class SmtpSession
{
    private enum AuthStep { PlainResponse, LoginUser, LoginPassword }

    private AuthStep? _authStep;
    private string? _loginUser;

    private async ValueTask AuthAsync(string arg)
    {
        if (_helo is null || !_esmtp) { Error("503 5.5.1 Error: send EHLO first"); return; }
        if (_authUser is not null) { Error("503 5.5.1 Error: already authenticated"); return; }
        if (_sender is not null) { Error("503 5.5.1 Error: AUTH not allowed in a mail transaction"); return; }
        if (_context.Users is null) { Error("502 5.5.1 Error: authentication is not enabled"); return; }
        if (_transport.Tls is null)
        {
            Error(_context.Role == Core.Configuration.SmtpRole.Submission
                ? "530 5.7.0 Must issue a STARTTLS command first"
                : "538 5.7.11 Encryption required for requested authentication mechanism");
            return;
        }
        var space = arg.IndexOf(' ');
        var mechanism = (space < 0 ? arg : arg[..space]).ToUpperInvariant();
        // RFC 4954 §4: "=" is an initial response that is empty.
        var initial = space < 0 ? null : arg[(space + 1)..] is "=" ? "" : arg[(space + 1)..];
        switch (mechanism)
        {
            case "PLAIN" when initial is null:
                _authStep = AuthStep.PlainResponse;
                Reply("334 ");
                break;
            case "PLAIN":
                await CheckPlainAsync(initial).ConfigureAwait(false);
                break;
            case "LOGIN" when initial is null:
                _authStep = AuthStep.LoginUser;
                Reply("334 VXNlcm5hbWU6"); // "Username:"
                break;
            case "LOGIN":
                TakeLoginUser(initial);
                break;
            default:
                Error("504 5.5.4 Error: unrecognized authentication type (PLAIN and LOGIN are offered)");
                break;
        }
    }

    private async ValueTask ContinueAuthAsync(string line)
    {
        var step = _authStep!.Value;
        _authStep = null;
        if (line == "*") { Error("501 5.0.0 Authentication cancelled"); return; }
        switch (step)
        {
            case AuthStep.PlainResponse:
                await CheckPlainAsync(line).ConfigureAwait(false);
                break;
            case AuthStep.LoginUser:
                TakeLoginUser(line);
                break;
            default:
                var user = _loginUser!;
                _loginUser = null;
                if (!SaslCredentials.TryDecodeText(line, out var password)) { Error("501 5.5.2 Error: cannot decode AUTH response"); return; }
                await CheckAsync(user, password).ConfigureAwait(false);
                break;
        }
    }

    private void TakeLoginUser(string base64)
    {
        if (!SaslCredentials.TryDecodeText(base64, out var user)) { Error("501 5.5.2 Error: cannot decode AUTH response"); return; }
        _loginUser = user;
        _authStep = AuthStep.LoginPassword;
        Reply("334 UGFzc3dvcmQ6"); // "Password:"
    }

    private async ValueTask CheckPlainAsync(string base64)
    {
        if (!SaslCredentials.TryDecodePlain(base64, out var user, out var password)) { Error("501 5.5.2 Error: cannot decode AUTH PLAIN response"); return; }
        await CheckAsync(user, password).ConfigureAwait(false);
    }

    private async ValueTask CheckAsync(string user, string password)
    {
        var verified = _policy.Mailboxes.PasswordHashOf(user) is { } hash
            ? SmtpUserStore.VerifyHashAsync(password, hash)
            : _context.Users!.VerifyAsync(user, password);
        if (await verified.ConfigureAwait(false))
        {
            _authUser = user;
            _context.Log($"smtp: session {_id} from {ClientLiteral}: authenticated as {user}");
            Reply("235 2.7.0 Authentication successful");
            return;
        }
        _context.Log($"smtp: session {_id} from {ClientLiteral}: authentication failed for {user}");
        Error("535 5.7.8 Error: authentication credentials invalid");
    }

    /// <summary>
    /// MAIL in an authenticated session: the sender must be one the login may use (Smtp.SenderLogins), and the
    /// login within Smtp.LoginRatePerHour; otherwise this answers (553 5.7.1 / 450 4.7.1, RFC 3463 §3.8) and logs why.
    /// </summary>
    private bool LoginMaySend(string sender)
    {
        var login = _authUser!;
        if (!_policy.SenderLogins.MayUse(login, sender))
        {
            _context.Log($"smtp: session {_id} from {ClientLiteral}: {login} may not send as <{sender}> (Smtp.SenderLogins)");
            Error($"553 5.7.1 <{sender}>: Sender address rejected: not owned by user {Quote(login)}");
            return false;
        }
        if (!_policy.LoginRates.TryTake(login, _policy.LoginRatePerHour))
        {
            _context.Log($"smtp: session {_id} from {ClientLiteral}: {login} is over Smtp.LoginRatePerHour ({_policy.LoginRatePerHour} messages an hour)");
            Reply($"450 4.7.1 Error: too much mail from user {Quote(login)} this hour, try again later");
            return false;
        }
        return true;
    }
}
