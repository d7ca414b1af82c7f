/**
 * Attaching a Postgres table (`POST /tables` with `"source": {"postgres": {...}}`): reads the
 * table's columns, types and key from Postgres, checks the server can replicate it, sets
 * REPLICA IDENTITY FULL (so updates carry unchanged TOAST values in the old row), and builds the
 * Moonlink table definition. The writer's source then creates the publication and slot and copies
 * the table (postgres-source.ts).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { type FormatVersion, SchemaError, type TableDefinition } from '../../schema/table-schema.ts';
import { redact } from '../../util/logger.ts';
import { ensureReplicaIdentityFull, quoteIdent, readPgTable, schemaForPgTable } from './pg-schema.ts';
import { defaultReplicationName } from './postgres-source.ts';
import { connectPg } from './replication-client.ts';
import { UnsupportedTypeError } from './type-mapping.ts';

/** A Postgres server that cannot be reached or cannot replicate: a 400 naming the problem. */
export class PostgresAttachError extends Error {
  readonly statusCode = 400;
}

/** An identifier as SQL needs it: bare when it is a plain lower-case name, quoted otherwise. */
function sqlName(s: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(s) ? s : quoteIdent(s);
}

export interface AttachRequest {
  name: string;
  source: { connection: string; table: string; publication?: string; slot?: string };
  primaryKey?: string[];
  formatVersion: FormatVersion;
}

export async function definitionFromPostgres(req: AttachRequest): Promise<TableDefinition> {
  let client: pg.Client;
  try {
    client = await connectPg(req.source.connection, 'moonlink-attach');
  } catch (e) {
    throw new PostgresAttachError(`cannot connect to Postgres: ${redact((e as Error).message)}`);
  }
  try {
    const settings = await client.query<{ wal_level: string; can_replicate: boolean }>(
      `SELECT current_setting('wal_level') AS wal_level,
              (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS can_replicate`,
    );
    const s = settings.rows[0];
    if (s.wal_level !== 'logical') {
      throw new PostgresAttachError(
        `Postgres has wal_level=${s.wal_level}; logical replication needs wal_level=logical (and a restart)`,
      );
    }
    if (!s.can_replicate) {
      throw new PostgresAttachError(
        'the Postgres user needs the REPLICATION attribute (ALTER ROLE … WITH REPLICATION) to create a replication slot',
      );
    }
    const info = await readPgTable(client, req.source.table);
    const { schema } = schemaForPgTable(info, req.primaryKey);
    try {
      await ensureReplicaIdentityFull(client, info);
    } catch (e) {
      throw new PostgresAttachError(
        `cannot set REPLICA IDENTITY FULL on ${info.quoted} (${(e as Error).message}); the table's owner can run ` +
          `ALTER TABLE … REPLICA IDENTITY FULL (on the table${info.relkind === 'p' ? ' and each partition' : ''})`,
      );
    }
    const tableUuid = randomUUID();
    const dflt = defaultReplicationName({ name: req.name, tableUuid });
    return {
      name: req.name,
      tableUuid,
      schema,
      formatVersion: req.formatVersion,
      createdAt: new Date().toISOString(),
      source: {
        postgres: {
          connection: req.source.connection,
          table: `${sqlName(info.schema)}.${sqlName(info.name)}`,
          publication: req.source.publication ?? dflt,
          slot: req.source.slot ?? dflt,
        },
      },
    };
  } catch (e) {
    if (e instanceof UnsupportedTypeError) throw new SchemaError(e.message);
    throw e;
  } finally {
    await client.end().catch(() => undefined);
  }
}
