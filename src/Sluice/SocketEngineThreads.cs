// How the runtime's socket engine hands on socket events. By default each epoll event is posted to the
// thread pool, so every SMTP command and reply costs a wake-up of a pool thread; `serve` runs the
// completions on the engine's own threads instead, on half the cores (bench/RESULTS.md, 2026-11-24:
// 5-23 % less CPU per relayed message in alternated pairs). Code on a socket continuation must never block:
// bcrypt (SmtpUserStore) and spool commits (FileQueueStore's writer) already run on other threads.
namespace Sluice;

internal static class SocketEngineThreads
{
    private const string InlineVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
    private const string CountVariable = "DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT";

    /// <summary>
    /// Sets the runtime's variables unless the operator set them; must run before the first socket is made,
    /// since the engine reads them once. Returns the line for the log.
    /// </summary>
    public static string Apply()
    {
        if (Environment.GetEnvironmentVariable(InlineVariable) is null) Environment.SetEnvironmentVariable(InlineVariable, "1");
        if (Environment.GetEnvironmentVariable(InlineVariable) != "1")
            return $"sockets: completions go to the thread pool ({InlineVariable}={Environment.GetEnvironmentVariable(InlineVariable)})";
        if (Environment.GetEnvironmentVariable(CountVariable) is null)
            Environment.SetEnvironmentVariable(CountVariable, Math.Max(1, Environment.ProcessorCount / 2).ToString());
        var count = Environment.GetEnvironmentVariable(CountVariable);
        return $"sockets: completions run on the socket engine's own threads ({CountVariable}={count})";
    }
}
