// How the local verbs reach the running server's admin API: HTTP over the Unix socket in DataDir.
using System.Net.Http.Json;
using System.Net.Sockets;
using Sluice.Core.Configuration;
using Sluice.Operate;

namespace Sluice.Verbs;

internal sealed class AdminClient(SluiceOptions options) : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(options.AdminSocket), ct).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    { BaseAddress = new Uri("http://sluice.admin/"), Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>The server's status, or null with the reason when no server answers for this DataDir.</summary>
    public async Task<(ServerStatus? Status, string Error)> StatusAsync(CancellationToken ct)
    {
        try
        {
            return (await _http.GetFromJsonAsync("api/v1/status", AdminJson.Default.ServerStatus, ct).ConfigureAwait(false), "");
        }
        catch (HttpRequestException e)
        {
            return (null, $"no sluice serve answers on {options.AdminSocket} ({e.Message})");
        }
    }

    public void Dispose() => _http.Dispose();
}
