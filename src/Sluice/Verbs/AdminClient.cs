// How the local verbs reach the running server's admin API: HTTP over the Unix socket in DataDir.
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Sluice.Core.Configuration;
using Sluice.Core.IO;
using Sluice.Operate;

namespace Sluice.Verbs;

internal sealed class AdminClient(SluiceOptions options) : IDisposable
{
    private readonly HttpClient _http = AdminSocket.Client(options.AdminSocket);

    /// <summary>For the verbs that post to the API; <see cref="Unreachable"/> says why when no server answers.</summary>
    public HttpClient Http => _http;

    /// <summary>
    /// Why no server answered, for "VERB: …": with no socket, or nothing listening on it (left by a killed
    /// server), none runs for this DataDir, unless the PID file names one whose admin API is down.
    /// </summary>
    public string Unreachable(HttpRequestException e)
    {
        var socket = options.AdminSocket;
        if (PidFile.FindServer(options.PidFile, out _) is { } pid)
            return $"sluice serve (pid {pid}) runs for DataDir {Path.GetFullPath(options.DataDir)} but does not answer on {socket} ({e.Message}); its log says why";
        var none = $"no sluice serve is running for DataDir {Path.GetFullPath(options.DataDir)}";
        return !File.Exists(socket) ? $"{none} (no {socket})"
            : e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused } ? $"{none} (nothing listens on {socket})"
            : $"{none} answering on {socket} ({e.Message})";
    }

    /// <summary>Prints the server's refusal (bad filter, unknown id, settings that cannot work) as "VERB: reason" and returns false.</summary>
    public static async Task<bool> SucceededAsync(HttpResponseMessage response, string verb, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode) return true;
        var error = await response.Content.ReadAsStringAsync(ct);
        try
        {
            error = JsonSerializer.Deserialize(error, QueueJson.Default.ErrorReply)?.Error ?? error;
        }
        catch (JsonException)
        {
            // not our JSON: print it as it came
        }
        Console.Error.WriteLine($"{verb}: {error}");
        return false;
    }

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
