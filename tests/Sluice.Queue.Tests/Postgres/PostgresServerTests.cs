using Npgsql;
using Sluice.Testing;

namespace Sluice.Queue.Tests.Postgres;

[Collection(PostgresCollection.Name)]
public sealed class PostgresServerTests(PostgresServer server)
{
    [Fact]
    public async Task A_test_database_is_private_and_commits_synchronously()
    {
        var a = await server.CreateDatabaseAsync();
        var b = await server.CreateDatabaseAsync();
        Assert.NotEqual(a, b);
        await using var connection = new NpgsqlConnection(a);
        await connection.OpenAsync();
        await using var show = new NpgsqlCommand("SHOW synchronous_commit", connection);
        Assert.Equal("on", await show.ExecuteScalarAsync());
        Assert.Equal("127.0.0.1", connection.Host);
    }
}
