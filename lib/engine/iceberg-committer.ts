/**
 * Iceberg commits. `buildCommit` runs on the table's loop and fixes what a commit at LSN C
 * contains: data files holding transactions up to C, and for each file the deletes with LSN ≤ C
 * (later deletes wait for the next commit, so the Iceberg snapshot is exactly the table at C).
 * `runCommit` persists new index runs, writes the Iceberg snapshot and moves the catalog
 * pointer's metadata location, off the loop.
 */

import {
  type CommitResult,
  type IcebergCommitInput,
  IcebergConflictError,
  type IcebergTable,
  type PropertyChange,
} from '../iceberg/iceberg-table.ts';
import type { RoaringBitmap64 } from '../iceberg/roaring.ts';
import type { Lsn } from '../lsn.ts';
import type { PartitionSpec } from '../schema/partition-spec.ts';
import type { TableSchema } from '../schema/table-schema.ts';
import { asFileId, type FileId, indexRunKey, metadataKeyFor, metadataVersion } from '../store/object-keys.ts';
import type { ObjectStore } from '../store/object-store.ts';
import type { Clock } from '../util/clock.ts';
import type { NewId } from '../util/ids.ts';
import { RETRY, retrying } from '../util/retry.ts';
import type { DataFile, PendingDeletes } from './data-file.ts';
import type { FileIndex } from './file-index.ts';
import type { IndexRun } from './index-run.ts';
import type { PointerKeeper } from './pointer-keeper.ts';

export interface CommitPlan {
  lsn: Lsn;
  /** Every data file in the Iceberg snapshot after this commit. */
  included: DataFile[];
  /** Files new to Iceberg. */
  added: DataFile[];
  /** Keys of Iceberg data files compaction replaced. */
  removedKeys: string[];
  /** New committed deletion vector per file whose deletes changed. */
  committedDeletes: Map<number, RoaringBitmap64>;
  checkpoints: Record<string, string>;
  /** Index runs to persist (not yet in the store) and all runs to list in the summary. */
  runsToPersist: IndexRun[];
  runs: IndexRun[];
  /**
   * Idempotency keys of the records this commit covers: new bytes to write (`write`), or the
   * object the last commit wrote (`key`), or none.
   */
  idempotency?: { write?: Uint8Array; key?: string; version?: number; complete?: boolean };
  /** Table property changes asked for (REST catalog commits) and taken into this commit. */
  properties?: PropertyChange[];
  /**
   * Nothing but properties changed and the LSN is the one already committed: a new metadata
   * file without a new snapshot.
   */
  propertiesOnly?: boolean;
  /** Schema changes taken into this commit (the last one becomes current). */
  schemas?: { added: TableSchema[]; lastColumnId: number };
  /** A new default partition spec taken into this commit. */
  partitioning?: { spec: PartitionSpec; lastPartitionId: number };
}

export interface CommitOutcome {
  metadataLocation: string;
  metadataKey: string;
  snapshotId: number;
  obsoleteKeys: string[];
  /** False when the catalog pointer could not be moved yet (the log must keep its entries). */
  pointerUpdated: boolean;
}

export const SUMMARY_LSN = 'moonlink.lsn';
export const SUMMARY_CHECKPOINTS = 'moonlink.checkpoints';
export const SUMMARY_INDEX = 'moonlink.index';
export const SUMMARY_NEXT_FILE_ID = 'moonlink.next-file-id';
export const SUMMARY_IDEMPOTENCY = 'moonlink.idempotency';

export function buildCommit(input: {
  lsn: Lsn;
  files: DataFile[];
  pendingDeletes: PendingDeletes;
  removedKeys: string[];
  checkpoints: Record<string, string>;
  index: FileIndex;
  /** Property changes to take into this commit, and the LSN of the last commit. */
  properties?: PropertyChange[];
  committedLsn?: Lsn;
  schemas?: CommitPlan['schemas'];
  partitioning?: CommitPlan['partitioning'];
}): CommitPlan {
  const present = (f: DataFile): boolean => f.removedLsn === undefined || f.removedLsn > input.lsn;
  const included = input.files.filter((f) => f.addedLsn <= input.lsn && present(f));
  const added = included.filter((f) => !f.inIceberg);
  // Files a TRUNCATE at or before the commit LSN emptied leave Iceberg now.
  const truncated = input.files.filter((f) => f.inIceberg && !present(f)).map((f) => f.objectKey);
  const byId = new Map(included.map((f) => [f.fileId, f]));
  // Pending deletes up to the commit LSN, without consuming them (the commit may still fail).
  const snapshot = new Map<number, number[]>();
  input.pendingDeletes.forEachThrough(input.lsn, (fileId, pos) => {
    const list = snapshot.get(fileId);
    if (list) list.push(pos);
    else snapshot.set(fileId, [pos]);
  });
  const committedDeletes = new Map<number, RoaringBitmap64>();
  for (const [fileId, positions] of snapshot) {
    const f = byId.get(asFileId(fileId));
    if (!f) continue;
    const next = f.committedDeletes.clone();
    for (const p of positions) next.add(p);
    committedDeletes.set(fileId, next);
  }
  const runs = [...input.index.allRuns()];
  const runsToPersist = runs.filter((r) => r.persistedKey === undefined);
  const removedKeys = [...input.removedKeys, ...truncated];
  const metadataChange =
    input.properties !== undefined || input.schemas !== undefined || input.partitioning !== undefined;
  const propertiesOnly =
    metadataChange &&
    input.lsn === input.committedLsn &&
    added.length === 0 &&
    removedKeys.length === 0 &&
    committedDeletes.size === 0 &&
    runsToPersist.length === 0;
  return {
    lsn: input.lsn,
    included,
    added,
    removedKeys,
    committedDeletes,
    checkpoints: { ...input.checkpoints },
    runsToPersist,
    runs,
    ...(metadataChange ? { propertiesOnly } : {}),
    ...(input.properties ? { properties: input.properties } : {}),
    ...(input.schemas ? { schemas: input.schemas } : {}),
    ...(input.partitioning ? { partitioning: input.partitioning } : {}),
  };
}

export async function runCommit(
  plan: CommitPlan,
  deps: {
    store: ObjectStore;
    iceberg: IcebergTable;
    pointer: PointerKeeper;
    tableRoot: string;
    nextFileId: FileId;
    clock: Clock;
    newId: NewId;
  },
): Promise<CommitOutcome> {
  const { store } = deps;
  for (const run of plan.runsToPersist) {
    const key = indexRunKey(deps.tableRoot, deps.newId());
    await store.put(key, await run.serializeCooperatively());
    run.persistedKey = key;
  }
  const idempotencyKey = plan.idempotency?.key;
  if (plan.idempotency?.write && idempotencyKey) await store.put(idempotencyKey, plan.idempotency.write);
  const deletes = new Map<string, RoaringBitmap64 | null>();
  for (const f of plan.included) {
    const d = plan.committedDeletes.get(f.fileId);
    if (d) deletes.set(f.objectKey, d.isEmpty() ? null : d);
  }
  const input: IcebergCommitInput = {
    addedDataFiles: plan.added.map((f) => ({
      key: f.objectKey,
      recordCount: f.rowCount,
      fileSizeBytes: f.sizeBytes,
      columnStats: f.stats,
      specId: f.specId,
      partition: f.partition,
      sortOrderId: f.sortOrderId,
    })),
    removedDataFiles: plan.removedKeys,
    deletes,
    summary: {
      [SUMMARY_LSN]: plan.lsn.toString(),
      [SUMMARY_CHECKPOINTS]: JSON.stringify(plan.checkpoints),
      [SUMMARY_INDEX]: JSON.stringify(plan.runs.map((r) => r.persistedKey)),
      [SUMMARY_NEXT_FILE_ID]: String(deps.nextFileId),
      ...(idempotencyKey ? { [SUMMARY_IDEMPOTENCY]: idempotencyKey } : {}),
    },
    operation:
      plan.removedKeys.length > 0 ? 'replace' : plan.committedDeletes.size > 0 ? 'overwrite' : 'append',
    ...(plan.properties ? { properties: plan.properties } : {}),
    ...(plan.schemas ? { schemas: plan.schemas } : {}),
    ...(plan.partitioning ? { partitioning: plan.partitioning } : {}),
  };
  const result = await commitOnce(deps, () =>
    plan.propertiesOnly
      ? deps.iceberg.updateProperties(
          plan.properties ?? [],
          deps.clock.now(),
          plan.schemas,
          plan.partitioning,
        )
      : deps.iceberg.commit(input),
  );
  // The Iceberg commit is done and must not be repeated; the pointer update is retried here. If
  // it still fails, the next read-snapshot publish carries the commit to the pointer.
  const pointerUpdated = await retrying(
    RETRY.pointer,
    () =>
      deps.pointer.update((p) => ({
        ...p,
        metadataLocation: result.metadataLocation,
        metadataKey: result.metadataKey,
        committedLsn: plan.lsn,
        checkpoints: plan.checkpoints,
      })),
    { clock: deps.clock },
  ).then(
    () => true,
    (e) => {
      if (deps.pointer.fencedBy) throw e;
      return false;
    },
  );
  return {
    metadataLocation: result.metadataLocation,
    metadataKey: result.metadataKey,
    snapshotId: result.snapshotId,
    obsoleteKeys: result.obsoleteKeys,
    pointerUpdated,
  };
}

/**
 * One Iceberg commit. If the next metadata version already exists while the catalog pointer
 * still names our current metadata, that file is left over from an attempt whose response was
 * lost (or from a fenced writer): nothing refers to it, so it is removed and the commit retried.
 * Before removing it, a compare-and-swap of the pointer (changing nothing) proves this writer
 * still owns the table: a newer writer's commit must never be taken for a leftover.
 */
async function commitOnce(
  deps: { store: ObjectStore; iceberg: IcebergTable; pointer: PointerKeeper; tableRoot: string },
  write: () => Promise<CommitResult>,
): Promise<CommitResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await write();
    } catch (e) {
      if (!(e instanceof IcebergConflictError) || attempt >= 2) throw e;
      await deps.pointer.update((p) => p); // throws FencedError if another writer took the table
      if (deps.pointer.pointer?.metadataKey !== deps.iceberg.metadataKey) throw e;
      const stray = metadataKeyFor(deps.tableRoot, (metadataVersion(deps.iceberg.metadataKey) ?? 0) + 1);
      await deps.store.delete(stray);
    }
  }
}
