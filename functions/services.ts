/**
 * What the API handlers need, behind interfaces, so the same handlers run in the embedded
 * service (local folder, file catalog, local log, the writer in-process) and on AWS (S3,
 * DynamoDB, Kinesis, the writer reached over its internal HTTP port).
 */

import type { Catalog } from '../lib/catalog/catalog.ts';
import type { PropertyChange } from '../lib/iceberg/iceberg-table.ts';
import type { DurableLog } from '../lib/log/durable-log.ts';
import type { Lsn } from '../lib/lsn.ts';
import type { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import type { SnapshotReader } from '../lib/read/snapshot-reader.ts';
import type { SchemaChange } from '../lib/schema/schema-change.ts';
import type { TableDefinition, TableSchema } from '../lib/schema/table-schema.ts';
import type { ImportRecord, ImportRequest } from '../lib/sources/import/import-record.ts';
import type { TablePlace } from '../lib/store/object-keys.ts';
import type { ObjectStore } from '../lib/store/object-store.ts';
import type { Operations } from '../lib/txn/op-batch.ts';
import type { Logger } from '../lib/util/logger.ts';

/** How the API reaches the writer (never its memory: only requests it to act). */
export interface WriterLink {
  /** Asks for a read snapshot covering `minLsn` now, instead of at the next interval. Best effort. */
  requestSnapshot(table: string, minLsn: Lsn): Promise<void>;
  /** Flushes and commits everything acknowledged; resolves when durable. */
  flush(table: string): Promise<{ lsn: Lsn; metadataLocation: string | undefined }>;
  /**
   * Sets and removes Iceberg table properties (REST catalog commits) in a commit of the writer
   * that owns the table; resolves with the new metadata location.
   */
  updateProperties(table: string, change: PropertyChange): Promise<{ metadataLocation: string | undefined }>;
  /**
   * What the write with this Idempotency-Key did (LSN, count, body hash), once the table has
   * applied everything through `afterLsn`; undefined when no such write was applied.
   */
  idempotencyRecord?(
    table: string,
    key: string,
    afterLsn?: Lsn,
  ): Promise<{ lsn: Lsn; count: number; hash: string } | undefined>;
  /**
   * Renames a table in the writer that owns it (lib/engine/table-rename.ts); resolves with the
   * renamed definition.
   */
  renameTable(from: string, to: string): Promise<TableDefinition>;
  /**
   * Applies a schema change (`{"changes": [...]}`) in the writer that owns the table; resolves
   * once writes are checked against the new schema.
   */
  changeSchema(table: string, body: unknown): Promise<SchemaChangeAnswer>;
  /**
   * For tables that add columns from records: logs the add-column changes a write's new fields
   * need (those another write has not added meanwhile) and resolves with the definition to
   * check the write against (undefined: the table does not add columns).
   */
  addColumns?(table: string, changes: SchemaChange[]): Promise<TableDefinition | undefined>;
  /**
   * Starts an import into the table in the writer that owns it (lib/sources/import); resolves
   * with its record once queued. Absent where imports are not served.
   */
  startImport?(table: string, req: ImportRequest): Promise<ImportRecord>;
  /**
   * The definition of a `POST /tables` body with a source, read from the source by the writer
   * that will own the table (on AWS only the writer may read a source's secret). Absent: the
   * caller reads the source itself (the embedded service is one process).
   */
  definitionFromSource?(table: string, body: unknown): Promise<TableDefinition>;
  /** Copies a source-fed table again from its source (`POST /tables/{name}/source/resync`). */
  resyncSource(table: string): Promise<void>;
  /** A table was created; the writer starts owning it. */
  tableCreated(table: string): Promise<void>;
  /**
   * A table is being dropped; the writer stops and deletes its log and (unless `purge` is false)
   * its data.
   */
  tableDropped(table: string, options?: { purge?: boolean }): Promise<void>;
  /** Writer-side figures for describe, when the writer is reachable. */
  status?(table: string): Promise<Record<string, unknown> | undefined>;
  /** Why writes to the table are refused now (a damaged table), when the writer knows it here. */
  writeRefusal?(table: string): Error | undefined;
  /** While the table replays its log after a restart: the LSN a read must see at least. */
  recoveryTarget?(table: string): Lsn | undefined;
  /** Readiness: every table open, the log writable (`GET /health`). */
  health?(): Promise<HealthReport>;
}

export interface SchemaChangeAnswer {
  schemaId: number;
  columns: { name: string; type: string; nullable: boolean }[];
  lsn: Lsn;
  /** set-partitioning: the spec now current. */
  partitionSpecId?: number;
  partitionBy?: { column: string; transform?: string; name?: string }[];
}

export interface HealthReport {
  ready: boolean;
  /** What is wrong: a table (`table`, `state`, `error`) or a component (`component`, `state`, `error`). */
  problems: { table?: string; component?: string; state: string; error: { code: string; message: string } }[];
}

export interface ApiLimits {
  /** Largest accepted request body. */
  maxBodyBytes: number;
  /** Most operations in one write. */
  maxOpsPerRequest: number;
  /** Requests per second per client address (0 = unlimited). */
  rateLimitPerSecond: number;
  /** Longest a read waits for a snapshot to reach the asked LSN. */
  maxWaitMs: number;
  /** Default and largest page of the scan endpoint. */
  defaultScanLimit: number;
  maxScanLimit: number;
  /** Read leases last this long. */
  leaseTtlMs: number;
  /** Readers must take their lease within this long after reading the pointer (half the GC grace). */
  leaseWindowMs: number;
}

export const DEFAULT_LIMITS: ApiLimits = {
  maxBodyBytes: 16 * 1024 * 1024,
  maxOpsPerRequest: 100_000,
  rateLimitPerSecond: 0,
  maxWaitMs: 10_000,
  defaultScanLimit: 1000,
  maxScanLimit: 100_000,
  leaseTtlMs: 5 * 60_000,
  leaseWindowMs: 15_000,
};

export interface Services {
  catalog: Catalog;
  store: ObjectStore;
  /** Appends carry the decoded operations (a writer in this process applies them without a re-parse). */
  log: DurableLog<Operations>;
  writer: WriterLink;
  limits: ApiLimits;
  logger: Logger;
  /**
   * Decodes a large JSON transaction off this thread (the embedded service's decoder worker);
   * undefined when it cannot (the route then decodes it here, for the error). Absent on Lambda.
   */
  decodeInWorker?: (
    schema: TableSchema,
    bytes: Uint8Array,
    maxOps: number,
  ) => Promise<Operations | undefined>;
  /** Parquet decoding for the scan endpoint (created lazily on Lambda). */
  pool: () => ParquetWorkerPool;
  /** Cached table definitions. */
  tables: TableCache;
  /** Snapshot manifests, files and deletion vectors, cached. */
  reader: SnapshotReader;
  /**
   * The `config` of an Iceberg REST `LoadTableResult` (region, vended credentials); none when
   * absent (embedded: `file://` locations need nothing).
   */
  icebergTableConfig?: (
    table: TablePlace,
    options: { vendedCredentials: boolean },
  ) => Promise<{
    config: Record<string, string>;
    storageCredentials?: { prefix: string; config: Record<string, string> }[];
  }>;
}

/** Table definitions change rarely; cache them briefly so ingest does not read the catalog each time. */
export class TableCache {
  private readonly entries = new Map<string, { def: TableDefinition | undefined; at: number }>();

  constructor(
    private readonly catalog: Catalog,
    private readonly ttlMs = 5000,
  ) {}

  async get(name: string): Promise<TableDefinition | undefined> {
    const e = this.entries.get(name);
    if (e && Date.now() - e.at < this.ttlMs) return e.def;
    const def = await this.catalog.getTable(name);
    this.entries.set(name, { def, at: Date.now() });
    return def;
  }

  invalidate(name: string): void {
    this.entries.delete(name);
  }
}
