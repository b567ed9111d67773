// The queue's tables in PostgreSQL and their versioned migrations. Sluice creates and migrates the
// schema at start, one node at a time (a transaction-scoped advisory lock), and refuses to run on a
// schema newer than it knows: an older binary must not write rows whose meaning it has lost.
using Npgsql;

namespace Sluice.Queue.Postgres;

internal static class PostgresSchema
{
    /// <summary>Advisory lock keys (first half "Sl"): the migration lock, one per queue number under QueueLockClass, one per node name under NodeLockClass.</summary>
    public const int MigrationLock = 0x536c_0001;
    public const int QueueLockClass = 0x536c_0002;
    public const int NodeLockClass = 0x536c_0003;

    /// <summary>Migration N (1-based) takes the schema from version N-1 to N. Append only; never edit a shipped one.</summary>
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE sluice_message (
            id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            queue            int NOT NULL,
            received_at      timestamptz NOT NULL,
            sender           text NOT NULL,
            flags            smallint NOT NULL,   -- 1 SMTPUTF8, 2 BODY=8BITMIME, 4 double bounce
            dsn_return       smallint NOT NULL,   -- RFC 3461 RET: 0 unspecified, 1 HDRS, 2 FULL
            envelope_id      text,
            authenticated_as text,
            delay_warned     boolean NOT NULL DEFAULT false,
            body_length      int NOT NULL,
            body             bytea NOT NULL
        );
        -- Mail is mostly already compressed or short-lived: spare the CPU of compressing it.
        ALTER TABLE sluice_message ALTER COLUMN body SET STORAGE EXTERNAL;
        CREATE INDEX sluice_message_queue ON sluice_message (queue, id);
        CREATE TABLE sluice_recipient (
            message_id   bigint NOT NULL REFERENCES sluice_message (id) ON DELETE CASCADE,
            idx          int NOT NULL,
            address      text NOT NULL,
            notify       smallint NOT NULL,       -- RFC 3461 NOTIFY flags, 0 unspecified
            orcpt        text,
            status       smallint NOT NULL DEFAULT 0,  -- 0 pending, 1 delivered, 2 failed
            attempts     int NOT NULL DEFAULT 0,
            next_attempt timestamptz,             -- null: at once
            last_error   text,
            PRIMARY KEY (message_id, idx)
        );
        """,
        // 2: the operator's hold (`sluice queue hold`), kept across restarts as the spool's 'H' record is; status 3 is a recipient the operator deleted.
        "ALTER TABLE sluice_message ADD COLUMN held boolean NOT NULL DEFAULT false",
        // 3: the nodes sharing the queue, each alive while alive_until (the database's clock) is ahead, and the node holding each message
        // (NULL: none; any deliver node may claim it). The index serves the claim, which looks for NULL and for each lapsed node's rows.
        """
        CREATE TABLE sluice_node (
            name        text PRIMARY KEY,
            roles       text NOT NULL,
            started_at  timestamptz NOT NULL,
            alive_until timestamptz NOT NULL,
            status      jsonb
        );
        ALTER TABLE sluice_message ADD COLUMN node text;
        CREATE INDEX sluice_message_node ON sluice_message (node, id);
        """,
        // 4: DestinationRatePerMinute across nodes: when each destination's pace is next full (GCRA), on the database's clock.
        "CREATE TABLE sluice_destination_pace (destination text PRIMARY KEY, full_at timestamptz NOT NULL)",
    ];

    public static int Latest => Migrations.Length;

    /// <summary>Brings the schema to <see cref="Latest"/>; throws <see cref="SchemaTooNewException"/> when the database is ahead.</summary>
    public static async Task<(int From, int To)> MigrateAsync(NpgsqlDataSource db, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await ExecuteAsync(connection, $"SELECT pg_advisory_xact_lock({MigrationLock})", ct).ConfigureAwait(false);
        await ExecuteAsync(connection, "CREATE TABLE IF NOT EXISTS sluice_schema (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())", ct)
            .ConfigureAwait(false);
        await using var read = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM sluice_schema", connection);
        var current = (int)(await read.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        if (current > Latest) throw new SchemaTooNewException(current, Latest);
        for (var version = current + 1; version <= Latest; version++)
        {
            await ExecuteAsync(connection, Migrations[version - 1], ct).ConfigureAwait(false);
            await ExecuteAsync(connection, $"INSERT INTO sluice_schema (version) VALUES ({version})", ct).ConfigureAwait(false);
        }
        await tx.CommitAsync(ct).ConfigureAwait(false);
        return (current, Latest);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}

public sealed class SchemaTooNewException(int found, int known)
    : IOException($"the queue database has schema version {found}, newer than this sluice knows ({known}): upgrade sluice on this node, or point Queue:ConnectionString at another database")
{
    public int Found { get; } = found;
    public int Known { get; } = known;
}
