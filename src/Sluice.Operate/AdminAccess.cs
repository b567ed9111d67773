// Who may use the admin API over TCP (Http.Listen): every request but /healthz and /readyz carries a bearer
// token (RFC 6750 §2.1), loopback included, since another local user is not the operator. Http.Token allows
// everything, Http.ReadToken only GET and HEAD. A request that changes state is also refused when a browser
// sent it from another site (its Origin) or as a form (its Content-Type), so a page cannot bounce the queue.
// The Unix socket in DataDir has no local address and is guarded by its file permissions instead.
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Sluice.Core.Configuration;

namespace Sluice.Operate;

internal sealed class AdminAccess(HttpOptions http)
{
    /// <summary>Answer without a token and say only alive or ready.</summary>
    public static readonly string[] OpenPaths = ["/healthz", "/readyz"];

    private readonly byte[]? _full = Digest(http.Token);
    private readonly byte[]? _read = Digest(http.ReadToken);

    public Task Check(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        if (context.Connection.LocalIpAddress is null || OpenPaths.Contains(request.Path.Value, StringComparer.Ordinal)) return next(context);
        var reads = HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method);
        var given = Given(request);
        var full = Matches(given, _full);
        if (!full && !Matches(given, _read))
            return given is null
                ? Refuse(context, StatusCodes.Status401Unauthorized, "Bearer realm=\"sluice\"", "send Authorization: Bearer TOKEN (Http.Token or Http.ReadToken)")
                : Refuse(context, StatusCodes.Status401Unauthorized, "Bearer realm=\"sluice\", error=\"invalid_token\"", "the bearer token is not Http.Token or Http.ReadToken");
        if (reads) return next(context);
        if (!full)
            return Refuse(context, StatusCodes.Status403Forbidden, "Bearer realm=\"sluice\", error=\"insufficient_scope\"",
                $"Http.ReadToken allows only GET and HEAD; {request.Method} needs Http.Token");
        var own = OwnOrigin(context.Connection);
        if (request.Headers.Origin is { Count: > 0 } origin && origin.ToString() != own)
            return Refuse(context, StatusCodes.Status403Forbidden, null, $"Origin {origin} is not {own}: a page from another site may not change state");
        if (!IsJsonOrEmpty(request))
            return Refuse(context, StatusCodes.Status415UnsupportedMediaType, null, "a request that changes state takes no body or Content-Type: application/json");
        return next(context);
    }

    /// <summary>The token's SHA-256, so the comparison takes the same time whatever its length (RFC 6750 §5.3: guard it).</summary>
    private static byte[]? Digest(string? token) => token is null ? null : SHA256.HashData(Encoding.UTF8.GetBytes(token));

    private static byte[]? Given(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        return authorization.StartsWith("Bearer ", StringComparison.Ordinal) ? Digest(authorization["Bearer ".Length..]) : null;
    }

    private static bool Matches(byte[]? given, byte[]? expected) =>
        given is not null && expected is not null && CryptographicOperations.FixedTimeEquals(given, expected);

    /// <summary>http://ADDRESS:PORT of the listener the request came in on: the only origin a page may have to change state.</summary>
    private static string OwnOrigin(ConnectionInfo connection)
    {
        var address = connection.LocalIpAddress!;
        return $"http://{new System.Net.IPEndPoint(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address, connection.LocalPort)}";
    }

    /// <summary>A browser form or a no-CORS fetch can send only text/plain, multipart/form-data or urlencoded bodies.</summary>
    private static bool IsJsonOrEmpty(HttpRequest request) =>
        request.ContentType is null ? request.ContentLength is null or 0 && !request.Headers.TransferEncoding.Any()
            : Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(request.ContentType, out var type)
              && type.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase);

    private static Task Refuse(HttpContext context, int status, string? challenge, string reason)
    {
        context.Response.StatusCode = status;
        if (challenge is not null) context.Response.Headers.WWWAuthenticate = challenge;
        return context.Response.WriteAsJsonAsync(new ErrorReply(reason), QueueJson.Default.ErrorReply);
    }
}
