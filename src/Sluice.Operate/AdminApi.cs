// The admin API (ASP.NET Core minimal APIs): always on a Unix socket in DataDir, where the local
// verbs (`top`, `queue flush`) reach it without any port configured, and on Http.Listen when set.
// Who may ask what over TCP: AdminAccess. GET /healthz and /readyz (no token), GET /api/v1/status (JSON),
// the queue endpoints (AdminApi.Queue.cs), POST /api/v1/inject (AdminApi.Inject.cs),
// POST /api/v1/reload (re-read the configuration; 422 with the problems when it does not load),
// POST /api/v1/queues/settings and
// /api/v1/queues/{n}/disable (setqload), GET /metrics (Prometheus text format).
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Prometheus;
using Sluice.Core.Configuration;
using Sluice.Core.Privileges;
using Sluice.Core.IO;

namespace Sluice.Operate;

public sealed partial class AdminApi : IAsyncDisposable
{
    private readonly WebApplication _app;

    private AdminApi(WebApplication app) => _app = app;

    public static async Task<AdminApi> StartAsync(SluiceOptions options, IServerControl server)
    {
        var socket = options.AdminSocket;
        if (File.Exists(socket)) File.Delete(socket); // left by a server that did not stop cleanly; the PID file guards against two servers
        // The host reads no appsettings.json from the working directory and watches no files: by default it watches
        // the content root (the working directory, often above the data dir) recursively, which cost CPU for every
        // Maildir and spool file written and one inotify watch per directory.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ContentRootPath = AppContext.BaseDirectory,
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
        });
        builder.Logging.ClearProviders();
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, AdminJson.Default));
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false; // an unauthenticated /healthz names no software
            k.ListenUnixSocket(socket);
            if (options.Http.Listen is { } listen && Endpoints.TryParseListen(listen, out var endpoint)) k.Listen(endpoint);
        });
        var app = builder.Build();
        app.Use(new AdminAccess(options.Http).Check);
        var metrics = new ServerMetrics(server.Status);
        // For load balancers and orchestrators: no token, and nothing in the answer but alive or (not) ready.
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", async (CancellationToken ct) => await server.ReadyAsync(ct).ConfigureAwait(false)
            ? Results.Text("ready\n") : Results.Text("not ready\n", statusCode: StatusCodes.Status503ServiceUnavailable));
        app.MapGet("/api/v1/status", () => Results.Ok(server.Status()));
        MapQueue(app, server);
        MapInject(app, server, options);
        app.MapPost("/api/v1/reload", () => server.ReloadConfiguration() is var reload && reload.Applied
            ? Results.Ok(reload) : Results.UnprocessableEntity(reload));
        app.MapPost("/api/v1/queues/settings", (QueueChange change) =>
            server.ChangeQueues(change) is { } problem ? Results.BadRequest(new ErrorReply(problem)) : Results.Ok(server.Status()));
        app.MapPost("/api/v1/queues/{number:int}/disable", (int number) =>
            server.DisableQueue(number) is { } problem ? Results.NotFound(new ErrorReply(problem)) : Results.Ok(server.Status()));
        app.MapMetrics("/metrics", metrics.Registry);
        await app.StartAsync().ConfigureAwait(false);
        try
        {
            RestrictSocket(socket, options.Http.SocketGroup);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return new AdminApi(app);
    }

    /// <summary>
    /// The socket drives the whole queue: its owner only (0600), or also Http.SocketGroup's members (0660). Created under
    /// the server's umask 077, it is never more open than this in between.
    /// </summary>
    private static void RestrictSocket(string socket, string? group)
    {
        if (OperatingSystem.IsWindows()) return;
        var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        if (group is not null)
        {
            FileOwnership.Give(socket, FileOwnership.Unchanged, FileOwnership.GroupId(group) ?? throw new ConfigurationException($"key 'Http:SocketGroup': there is no group \"{group}\" on this host"));
            mode |= UnixFileMode.GroupRead | UnixFileMode.GroupWrite;
        }
        File.SetUnixFileMode(socket, mode);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}

public sealed record FlushReply(string Result);
