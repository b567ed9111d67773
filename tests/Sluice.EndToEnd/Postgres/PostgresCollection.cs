using Sluice.Testing;

namespace Sluice.EndToEnd.Postgres;

/// <summary>One private PostgreSQL for every test of this assembly that needs one; each test takes its own database.</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "postgres";
}
