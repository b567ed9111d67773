// A loopback TCP port free now, for a server a test starts that cannot report the port it bound itself.
using System.Net;
using System.Net.Sockets;

namespace Sluice.Testing;

public static class LoopbackPort
{
    public static int Free()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
