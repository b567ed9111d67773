// HTTP to the admin API over its Unix socket (DataDir/admin.sock): how the local verbs and the tests reach it.
using System.Net.Sockets;

namespace Sluice.Operate;

public static class AdminSocket
{
    public static HttpClient Client(string socketPath) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct).ConfigureAwait(false);
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
}
