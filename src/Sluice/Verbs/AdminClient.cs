// How the local verbs reach the running server's admin API: HTTP over the Unix socket in DataDir.
using System.Net.Http.Json;
using Sluice.Core.Configuration;
using Sluice.Operate;

namespace Sluice.Verbs;

internal sealed class AdminClient(SluiceOptions options) : IDisposable
{
    private readonly HttpClient _http = AdminSocket.Client(options.AdminSocket);

    /// <summary>For the verbs that post to the API; <see cref="Unreachable"/> says why when no server answers.</summary>
    public HttpClient Http => _http;

    public string Unreachable(HttpRequestException e) => $"no sluice serve answers on {options.AdminSocket} ({e.Message})";

    /// <summary>The server's status, or null with the reason when no server answers for this DataDir.</summary>
    public async Task<(ServerStatus? Status, string Error)> StatusAsync(CancellationToken ct)
    {
        try
        {
            return (await _http.GetFromJsonAsync("api/v1/status", AdminJson.Default.ServerStatus, ct).ConfigureAwait(false), "");
        }
        catch (HttpRequestException e)
        {
            return (null, Unreachable(e));
        }
    }

    public void Dispose() => _http.Dispose();
}
