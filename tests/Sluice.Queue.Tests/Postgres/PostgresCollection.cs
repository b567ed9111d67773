using Sluice.Testing;

namespace Sluice.Queue.Tests.Postgres;

/// <summary>One private PostgreSQL for every test of this assembly that needs one (initdb costs a second or two).</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "postgres";
}
