/**
 * Registers every table in the AWS Glue Data Catalog the way Iceberg's own GlueCatalog does, so
 * Athena (and EMR, Redshift Spectrum) find them: one Glue database per namespace
 * (`<prefix><namespace>`, e.g. `moonlink_default`), a table with `table_type = ICEBERG`,
 * `metadata_location`, `previous_metadata_location` and the columns.
 *
 * - The first sync creates the table (and a database for a namespace other than `default`,
 *   which the stack creates); later ones `UpdateTable` with the `VersionId` read just before,
 *   so an update racing another fails (`ConcurrentModificationException`) and is re-read and
 *   retried instead of overwriting a newer pointer.
 * - Never backwards: if Glue already names a newer metadata version of the same table (same
 *   `moonlink.table-uuid`), this writer is stale (another took the table) and stops syncing it.
 * - Glue being down never blocks ingestion: commits only record the newest location; one sync
 *   per table runs at a time and retries with backoff (1 s doubling to 60 s by default), and
 *   always sends the newest location it has, so it catches up in one call.
 */

import {
  CreateDatabaseCommand,
  CreateTableCommand,
  DeleteTableCommand,
  GetTableCommand,
  type GlueClient,
  type Table as GlueTable,
  type TableInput,
  UpdateTableCommand,
} from '@aws-sdk/client-glue';
import type { CatalogMirror, MirroredTable } from '../engine/catalog-mirror.ts';
import type { IcebergType, NestedField } from '../schema/iceberg-type.ts';
import { DEFAULT_NAMESPACE, parseTableName } from '../schema/table-name.ts';
import { metadataVersion } from '../store/object-keys.ts';
import { errorName, sleep } from '../util/aws-retry.ts';
import type { Logger } from '../util/logger.ts';

export interface GlueMirrorOptions {
  client: GlueClient;
  /** Glue database of namespace `ns` is `<databasePrefix><ns>` (default `moonlink_`). */
  databasePrefix?: string;
  /** The AWS account of the Glue catalog (default: the caller's). */
  catalogId?: string;
  logger: Logger;
  /** Retry backoff after a failed sync (default 1 s doubling to 60 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  now?: () => number;
}

type SyncState = 'pending' | 'synced' | 'retrying' | 'stopped';

interface TableSync {
  wanted?: MirroredTable;
  /** When the oldest commit not yet in Glue was made (for the lag). */
  unsyncedSince?: number;
  synced?: { metadataLocation: string; at: number };
  lastError?: { message: string; code: string; at: number };
  state: SyncState;
  failures: number;
  running?: Promise<void>;
  released: boolean;
}

/** Iceberg types as the Hive type strings Glue and Athena show. */
export function hiveType(t: IcebergType): string {
  switch (t.kind) {
    case 'boolean':
    case 'int':
    case 'float':
    case 'double':
    case 'date':
    case 'string':
    case 'binary':
      return t.kind;
    case 'long':
      return 'bigint';
    case 'timestamp':
    case 'timestamptz':
      return 'timestamp';
    case 'time':
    case 'uuid':
      return 'string';
    case 'fixed':
      return 'binary';
    case 'decimal':
      return `decimal(${t.precision},${t.scale})`;
    case 'list':
      return `array<${hiveType(t.element)}>`;
    case 'map':
      return `map<${hiveType(t.key)},${hiveType(t.value)}>`;
    case 'struct':
      return `struct<${t.fields.map((f) => `${f.name}:${hiveType(f.type)}`).join(',')}>`;
  }
}

function columns(fields: NestedField[]): NonNullable<TableInput['StorageDescriptor']>['Columns'] {
  return fields.map((f) => ({
    Name: f.name.toLowerCase(),
    Type: hiveType(f.type),
    Parameters: {
      'iceberg.field.id': String(f.id),
      'iceberg.field.optional': String(!f.required),
      'iceberg.field.current': 'true',
    },
  }));
}

export class GlueCatalogMirror implements CatalogMirror {
  readonly name = 'glue';
  private readonly tables = new Map<string, TableSync>();
  private readonly prefix: string;
  private readonly now: () => number;
  private closed = false;
  private readonly wake = new AbortController();

  constructor(private readonly o: GlueMirrorOptions) {
    this.prefix = o.databasePrefix ?? 'moonlink_';
    this.now = o.now ?? Date.now;
  }

  /** Glue database and table names of one of our tables (Glue keeps names in lower case). */
  glueNames(table: string): { database: string; name: string } {
    const t = parseTableName(table);
    if (!t) throw new Error(`invalid table name ${JSON.stringify(table)}`);
    return { database: `${this.prefix}${t.namespace}`.toLowerCase(), name: t.name.toLowerCase() };
  }

  committed(t: MirroredTable): void {
    if (this.closed) return;
    let s = this.tables.get(t.table);
    if (!s || s.released) {
      s = { state: 'pending', failures: 0, released: false, ...(s?.synced ? { synced: s.synced } : {}) };
      this.tables.set(t.table, s);
    }
    if (s.state === 'stopped') return;
    if (s.wanted?.metadataLocation === t.metadataLocation) return;
    if (s.synced?.metadataLocation === t.metadataLocation && !s.wanted) return;
    s.wanted = t;
    s.unsyncedSince ??= this.now();
    if (s.state === 'synced') s.state = 'pending';
    if (!s.running) s.running = this.run(t.table, s);
  }

  released(table: string): void {
    const s = this.tables.get(table);
    if (s) s.released = true;
  }

  async dropped(table: string): Promise<void> {
    const s = this.tables.get(table);
    if (s) s.released = true;
    await s?.running;
    this.tables.delete(table);
    const { database, name } = this.glueNames(table);
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.o.client.send(
          new DeleteTableCommand({ DatabaseName: database, Name: name, CatalogId: this.o.catalogId }),
        );
        return;
      } catch (e) {
        if (errorName(e) === 'EntityNotFoundException') return;
        this.o.logger.warn('could not remove a dropped table from Glue', { table, attempt, error: e });
        await sleep(Math.min(this.o.retryBaseMs ?? 1000, 5000) * 2 ** attempt);
      }
    }
  }

  status(table: string): Record<string, unknown> | undefined {
    const s = this.tables.get(table);
    if (!s) return undefined;
    const { database, name } = this.glueNames(table);
    return {
      state: s.state,
      database,
      table: name,
      syncedLocation: s.synced?.metadataLocation ?? null,
      syncedAt: s.synced ? new Date(s.synced.at).toISOString() : null,
      lagSeconds: s.unsyncedSince === undefined ? 0 : Math.max(0, (this.now() - s.unsyncedSince) / 1000),
      ...(s.lastError ? { lastError: { ...s.lastError, at: new Date(s.lastError.at).toISOString() } } : {}),
    };
  }

  lagSeconds(): number {
    let oldest: number | undefined;
    for (const s of this.tables.values()) {
      if (s.released || s.unsyncedSince === undefined) continue;
      if (oldest === undefined || s.unsyncedSince < oldest) oldest = s.unsyncedSince;
    }
    return oldest === undefined ? 0 : Math.max(0, (this.now() - oldest) / 1000);
  }

  /** Lets syncs in flight finish their current call, then stops. */
  async close(): Promise<void> {
    this.closed = true;
    this.wake.abort();
    await Promise.all([...this.tables.values()].map((s) => s.running));
  }

  private async run(table: string, s: TableSync): Promise<void> {
    try {
      while (!s.released && !this.closed && s.wanted && s.state !== 'stopped') {
        const want = s.wanted;
        try {
          const outcome = await this.syncOnce(want, s);
          s.failures = 0;
          if (outcome === 'stale') return;
          s.lastError = undefined;
          s.synced = { metadataLocation: want.metadataLocation, at: this.now() };
          if (s.wanted === want) {
            s.wanted = undefined;
            s.unsyncedSince = undefined;
            s.state = 'synced';
          }
        } catch (e) {
          s.failures++;
          s.state = 'retrying';
          s.lastError = {
            code: errorName(e) ?? 'Error',
            message: (e as Error).message ?? String(e),
            at: this.now(),
          };
          const delay = Math.min(
            (this.o.retryBaseMs ?? 1000) * 2 ** (s.failures - 1),
            this.o.retryMaxMs ?? 60_000,
          );
          this.o.logger.warn('Glue sync failed; retrying', {
            table,
            attempt: s.failures,
            retryInMs: delay,
            error: e,
          });
          await sleep(delay, this.wake.signal).catch(() => undefined);
        }
      }
    } finally {
      s.running = undefined;
    }
  }

  /** One attempt: read, then create or update on the version read (re-read on a race). */
  private async syncOnce(t: MirroredTable, s: TableSync): Promise<'synced' | 'stale'> {
    const { database, name } = this.glueNames(t.table);
    const ns = parseTableName(t.table)?.namespace ?? DEFAULT_NAMESPACE;
    const c = this.o.client;
    const catalogId = this.o.catalogId;
    for (let race = 0; race < 10; race++) {
      let current: GlueTable | undefined;
      try {
        current = (
          await c.send(new GetTableCommand({ DatabaseName: database, Name: name, CatalogId: catalogId }))
        ).Table;
      } catch (e) {
        if (errorName(e) !== 'EntityNotFoundException') throw e;
        current = undefined;
      }
      if (!current) {
        try {
          await c.send(
            new CreateTableCommand({
              DatabaseName: database,
              CatalogId: catalogId,
              TableInput: this.input(t, undefined),
            }),
          );
          return 'synced';
        } catch (e) {
          const code = errorName(e);
          if (code === 'AlreadyExistsException') continue; // created meanwhile: read it
          if (code === 'EntityNotFoundException' && ns !== DEFAULT_NAMESPACE) {
            // The namespace's database does not exist yet: created on demand.
            await c
              .send(
                new CreateDatabaseCommand({
                  CatalogId: catalogId,
                  DatabaseInput: { Name: database, Description: `Moonlink namespace ${ns}` },
                }),
              )
              .catch((d) => {
                if (errorName(d) !== 'AlreadyExistsException') throw d;
              });
            continue;
          }
          throw e;
        }
      }
      const params = (current.Parameters ?? {}) as Record<string, string>;
      const location = params.metadata_location;
      if (location === t.metadataLocation) return 'synced';
      if (params['moonlink.table-uuid'] === t.tableUuid && location) {
        const theirs = metadataVersion(keyPart(location));
        const ours = metadataVersion(keyPart(t.metadataLocation));
        if (theirs !== undefined && ours !== undefined && theirs > ours) {
          s.state = 'stopped';
          s.lastError = {
            code: 'NewerInGlue',
            message: `Glue names metadata v${theirs}, newer than this writer's v${ours}: another writer owns the table; this one stops syncing it`,
            at: this.now(),
          };
          this.o.logger.warn('Glue has newer metadata than this writer; not syncing the table', {
            table: t.table,
          });
          return 'stale';
        }
      }
      try {
        await c.send(
          new UpdateTableCommand({
            DatabaseName: database,
            CatalogId: catalogId,
            TableInput: this.input(t, location),
            VersionId: current.VersionId,
          }),
        );
        return 'synced';
      } catch (e) {
        if (errorName(e) === 'ConcurrentModificationException') continue; // re-read and retry
        throw e;
      }
    }
    throw new Error('Glue table kept changing under this writer (10 concurrent modifications in a row)');
  }

  private input(t: MirroredTable, previous: string | undefined): TableInput {
    const { name } = this.glueNames(t.table);
    return {
      Name: name,
      TableType: 'EXTERNAL_TABLE',
      Parameters: {
        table_type: 'ICEBERG',
        metadata_location: t.metadataLocation,
        ...(previous ? { previous_metadata_location: previous } : {}),
        'moonlink.table': t.table,
        'moonlink.table-uuid': t.tableUuid,
      },
      StorageDescriptor: { Location: t.tableLocation, Columns: columns(t.schema.fields) },
    };
  }
}

/** The path part of a location (`s3://bucket/a/metadata/v3.metadata.json` → `a/metadata/...`). */
function keyPart(location: string): string {
  return location.replace(/^[a-z0-9]+:\/\/[^/]*\//, '');
}
