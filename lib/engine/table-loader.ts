/**
 * Opening a table for writing, which is also recovery: take a new fencing epoch, load the last
 * Iceberg snapshot the catalog points to (schema, data files, deletion vectors, the LSN it
 * covers, source checkpoints), load the persisted index runs it lists (rebuilding the index
 * only for files no run covers), and hand the state to a new TableHandler. The caller then
 * replays the durable log after that LSN.
 */

import { type Catalog, TableNotReadyError } from '../catalog/catalog.ts';
import { readColumn, tableFromIpc } from '../columns/arrow-convert.ts';
import { type IcebergOptions, IcebergTable } from '../iceberg/iceberg-table.ts';
import { RoaringBitmap64 } from '../iceberg/roaring.ts';
import { type Lsn, lsnFromText, maxLsn, ZERO_LSN } from '../lsn.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import type { TableDefinition } from '../schema/table-schema.ts';
import { keyString } from '../schema/values.ts';
import { asFileId, asObjectKey, fileIdFromKey, tableRootOf } from '../store/object-keys.ts';
import { DataFileMissingError, NotFoundError, type ObjectStore } from '../store/object-store.ts';
import { rowCodec } from '../txn/transaction.ts';
import { Semaphore } from '../util/semaphore.ts';
import type { DataFile } from './data-file.ts';
import { indexRunFor } from './flusher.ts';
import {
  SUMMARY_CHECKPOINTS,
  SUMMARY_IDEMPOTENCY,
  SUMMARY_INDEX,
  SUMMARY_LSN,
  SUMMARY_NEXT_FILE_ID,
} from './iceberg-committer.ts';
import { IdempotencyKeys } from './idempotency.ts';
import { IndexRun } from './index-run.ts';
import { PointerKeeper } from './pointer-keeper.ts';
import { type RecoveredState, TableHandler, type TableHandlerDeps } from './table-handler.ts';

/** What opening a table needs: the handler's dependencies but those the opening makes. */
export type OpenTableDeps = Omit<TableHandlerDeps, 'pointer' | 'iceberg'>;

export { ephemeralRootOf, tableRootOf } from '../store/object-keys.ts';

/** Loads the Iceberg table the catalog points to, creating it if it was never committed. */
export async function loadIceberg(
  store: ObjectStore,
  catalog: Catalog,
  def: TableDefinition,
  options: IcebergOptions = {},
): Promise<IcebergTable> {
  const pointer = await catalog.getPointer(def.name);
  const root = tableRootOf(def);
  if (pointer?.metadataKey) return IcebergTable.load(store, pointer.metadataKey, options);
  return (
    (await IcebergTable.loadLatest(store, root, options)) ?? IcebergTable.create(store, root, def, options)
  );
}

/**
 * How long a table's creator has to initialize its pointer. Until then a writer leaves the table
 * alone (claiming it would fence the creator); after it, the writer finishes a creation that
 * crashed half-way.
 */
export const CREATION_GRACE_MS = 60_000;

export async function openTable(deps: OpenTableDeps): Promise<TableHandler> {
  try {
    return await openTableOrThrow(deps);
  } catch (e) {
    // An object the table's metadata names is gone: the table is damaged, not just unopened.
    if (e instanceof NotFoundError) throw new DataFileMissingError(e.key, deps.def.name);
    throw e;
  }
}

/** Every data file the table refers to exists (a cheap HEAD each, a few at a time). */
async function checkDataFiles(store: ObjectStore, files: readonly DataFile[]): Promise<void> {
  const gate = new Semaphore(16);
  await Promise.all(
    files.map((f) =>
      gate.run(async () => {
        if (!(await store.head(f.objectKey))) throw new NotFoundError(f.objectKey);
      }),
    ),
  );
}

async function openTableOrThrow(deps: OpenTableDeps): Promise<TableHandler> {
  const { def, store, catalog, logger } = deps;
  const started = Date.now();
  const initial = await catalog.getPointer(def.name);
  if (!initial?.metadataKey && started - Date.parse(def.createdAt) < CREATION_GRACE_MS)
    throw new TableNotReadyError(def.name);
  const epoch = await catalog.acquireEpoch(def.name);
  const pointer = await catalog.getPointer(def.name);
  const iceberg = await loadIceberg(store, catalog, def, {
    keepSnapshots: deps.options.keepSnapshots,
    maxSnapshotAgeMs: deps.options.maxSnapshotAgeMs,
    pool: deps.pool,
    newId: deps.newId,
    clock: deps.clock,
  });
  const keeper = new PointerKeeper(catalog, def.name, epoch, pointer);
  if (!pointer?.metadataKey) {
    await keeper.update((p) => ({
      ...p,
      metadataKey: iceberg.metadataKey,
      metadataLocation: iceberg.metadataLocation(),
    }));
  }
  const recovered = await recoverState(iceberg, def, store, deps.pool, pointer?.committedLsn);
  if (pointer?.snapshotKey) recovered.pointerLsn = pointer.lsn;
  if (recovered.idempotencyKey) {
    recovered.idempotency = IdempotencyKeys.parse(await store.get(recovered.idempotencyKey), {
      retentionMs: deps.options.idempotencyRetentionMs,
      maxKeys: deps.options.idempotencyMaxKeys,
    });
  }
  await checkDataFiles(store, recovered.files);
  logger.info('table opened', {
    table: def.name,
    epoch,
    lsn: recovered.lsn,
    dataFiles: recovered.files.length,
    indexRuns: recovered.runs.length,
    ms: Date.now() - started,
  });
  return new TableHandler(
    {
      def,
      store,
      catalog,
      pool: deps.pool,
      options: deps.options,
      logger,
      spillDir: deps.spillDir,
      pointer: keeper,
      iceberg,
      onFenced: deps.onFenced,
      onCommitted: deps.onCommitted,
      memoryHeadroom: deps.memoryHeadroom,
      clock: deps.clock,
      newId: deps.newId,
    },
    recovered,
  );
}

export async function recoverState(
  iceberg: IcebergTable,
  def: TableDefinition,
  store: ObjectStore,
  pool: ParquetWorkerPool,
  /**
   * The pointer's committed LSN: where the table starts when Iceberg has no commit yet, or when
   * the pointer was moved past the last commit (a rename starts the table after every record
   * its new name had in a shared log).
   */
  startLsn: Lsn = ZERO_LSN,
): Promise<RecoveredState> {
  const state = await iceberg.currentState();
  const summary = state.summary ?? {};
  const committed = summary[SUMMARY_LSN] ? lsnFromText(summary[SUMMARY_LSN]) : ZERO_LSN;
  const lsn = maxLsn(committed, startLsn);
  const files: DataFile[] = [];
  let maxId = 0;
  for (const d of state.dataFiles) {
    const fileId = fileIdFromKey(d.key);
    if (fileId === undefined) throw new Error(`${d.key}: data file name does not carry a file id`);
    maxId = Math.max(maxId, fileId);
    const deletes = state.deletes.get(d.key) ?? new RoaringBitmap64();
    files.push({
      fileId,
      objectKey: asObjectKey(d.key),
      rowCount: d.recordCount,
      sizeBytes: d.fileSizeBytes,
      addedLsn: lsn,
      stats: d.columnStats,
      deletes,
      committedDeletes: deletes.clone(),
      dvDirty: !deletes.isEmpty(),
      inIceberg: true,
      specId: d.specId ?? 0,
      partition: d.partition ?? [],
      sortOrderId: d.sortOrderId ?? 0,
      addedAt: 0,
    });
  }
  const runs: IndexRun[] = [];
  const codec = rowCodec(def.schema);
  if (codec.keyColumns.length > 0) {
    const keys = summary[SUMMARY_INDEX] ? (JSON.parse(summary[SUMMARY_INDEX]) as (string | null)[]) : [];
    const covered = new Set<number>();
    for (const key of keys) {
      if (!key) continue;
      // A run collected meanwhile (a writer that committed since this one read the pointer):
      // its files are indexed again from their key columns below.
      const bytes = await store.get(key).catch((e: unknown) => {
        if (e instanceof NotFoundError) return undefined;
        throw e;
      });
      if (!bytes) continue;
      const run = IndexRun.deserialize(bytes, key);
      run.persistedKey = key;
      runs.push(run);
      for (const id of run.fileIds) covered.add(id);
    }
    // Files no persisted run covers: rebuild their entries from the key columns.
    for (const f of files) {
      if (covered.has(f.fileId)) continue;
      const names = codec.keyColumns.map((c) => def.schema.fields[c].name);
      const table = tableFromIpc(await pool.decode(await store.get(f.objectKey), names));
      const cols = codec.keyColumns.map((c, i) => readColumn(def.schema.fields[c].type, table, i));
      runs.push(indexRunFor(f.fileId, table.numRows, (i) => keyString(cols.map((col) => col[i]))));
    }
  }
  const checkpoints = summary[SUMMARY_CHECKPOINTS]
    ? (JSON.parse(summary[SUMMARY_CHECKPOINTS]) as Record<string, string>)
    : {};
  const nextFileId = asFileId(Math.max(maxId + 1, Number(summary[SUMMARY_NEXT_FILE_ID] ?? '1')));
  const idempotencyKey = summary[SUMMARY_IDEMPOTENCY];
  return { files, runs, nextFileId, lsn, checkpoints, ...(idempotencyKey ? { idempotencyKey } : {}) };
}
