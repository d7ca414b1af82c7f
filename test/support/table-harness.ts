/** A table opened straight on the engine (no HTTP, no log), timers off unless asked for: tests and bench. */
import os from 'node:os';
import type { Catalog } from '../../lib/catalog/catalog.ts';
import { MemoryCatalog } from '../../lib/catalog/file-catalog.ts';
import { type EngineOptions, engineOptions } from '../../lib/engine/options.ts';
import type { TableHandler } from '../../lib/engine/table-handler.ts';
import { openTable } from '../../lib/engine/table-loader.ts';
import type { ParquetWorkerPool } from '../../lib/parquet/worker-pool.ts';
import {
  buildSchema,
  type FormatVersion,
  type TableDefinition,
  type TableSchema,
} from '../../lib/schema/table-schema.ts';
import { MemoryObjectStore } from '../../lib/store/memory-object-store.ts';
import type { ObjectStore } from '../../lib/store/object-store.ts';
import { createTable } from '../../lib/table-admin.ts';
import { type DecodedOp, keyOf, rowCodec } from '../../lib/txn/transaction.ts';
import { silentLogger } from '../../lib/util/logger.ts';

/** The smallest keyed table: `id long` (the key) and `v string`. */
export const idValueSchema: TableSchema = buildSchema(
  [
    { name: 'id', type: 'long' },
    { name: 'v', type: 'string' },
  ],
  ['id'],
);
const idValueCodec = rowCodec(idValueSchema);

/** Upserts of rows (id, `${tag}${id}`) into an {@link idValueSchema} table. */
export function idValueUpserts(ids: number[], tag: string): DecodedOp[] {
  return ids.map((id) => {
    const values = [BigInt(id), `${tag}${id}`];
    return { op: 'upsert' as const, values, key: keyOf(idValueCodec, values) };
  });
}

export interface TestTable {
  def: TableDefinition;
  store: ObjectStore;
  catalog: Catalog;
  handler: TableHandler;
}

export async function openTestTable(o: {
  name: string;
  schema: TableSchema;
  pool: ParquetWorkerPool;
  formatVersion?: FormatVersion;
  store?: ObjectStore;
  catalog?: Catalog;
  options?: Partial<EngineOptions>;
  spillDir?: string;
  /** Partitioning and sort order, as `POST /tables` takes them. */
  partitionBy?: TableDefinition['partitionBy'];
  sortBy?: TableDefinition['sortBy'];
  /** A table created before (in `store` and `catalog`): opened again, as a restart does. */
  reuse?: TableDefinition;
}): Promise<TestTable> {
  const store = o.store ?? new MemoryObjectStore();
  const catalog = o.catalog ?? new MemoryCatalog();
  const def: TableDefinition = o.reuse ?? {
    name: o.name,
    tableUuid: crypto.randomUUID(),
    schema: o.schema,
    formatVersion: o.formatVersion ?? 2,
    createdAt: new Date().toISOString(),
    ...(o.partitionBy ? { partitionBy: o.partitionBy } : {}),
    ...(o.sortBy ? { sortBy: o.sortBy } : {}),
  };
  if (!o.reuse) await createTable(store, catalog, def);
  const handler = await openTable({
    def,
    store,
    catalog,
    pool: o.pool,
    options: engineOptions({
      snapshotIntervalMs: 0,
      commitIntervalMs: 0,
      gcIntervalMs: 0,
      compaction: false,
      ...o.options,
    }),
    logger: silentLogger,
    spillDir: o.spillDir ?? os.tmpdir(),
  });
  handler.start();
  return { def, store, catalog, handler };
}
