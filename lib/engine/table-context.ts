/**
 * What a table's jobs share with the loop that runs them (table-handler.ts): the table's data,
 * its scheduling state, its dependencies, and `post` to hand a job's result back to the loop as
 * an event. Every job (flushes, spills, snapshots, commits, compaction, index merges) is a
 * start function that begins async I/O and a `done` handler for the event it posts, side by side
 * in the job's own module.
 */

import type { Catalog } from '../catalog/catalog.ts';
import type { IcebergTable, PropertyChange } from '../iceberg/iceberg-table.ts';
import type { Lsn } from '../lsn.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import type { PartitionSpec } from '../schema/partition-spec.ts';
import type { EvolvedSchema } from '../schema/schema-change.ts';
import type { TableDefinition, TableSchema } from '../schema/table-schema.ts';
import type { FileId } from '../store/object-keys.ts';
import type { ObjectStore } from '../store/object-store.ts';
import type { Operations } from '../txn/op-batch.ts';
import type { DecodedOp } from '../txn/transaction.ts';
import type { Clock } from '../util/clock.ts';
import type { NewId } from '../util/ids.ts';
import type { Logger } from '../util/logger.ts';
import type { CompactionPlan, CompactionResult } from './compactor.ts';
import type { DataFile } from './data-file.ts';
import type { FlushResult } from './flusher.ts';
import type { GarbageCollector } from './garbage-collector.ts';
import type { CommitOutcome, CommitPlan } from './iceberg-committer.ts';
import type { IdempotencyKeys, IdempotentWrite } from './idempotency.ts';
import type { IndexRun } from './index-run.ts';
import type { CommitWaiter, MaintenanceScheduler, SnapshotWaiter } from './maintenance-scheduler.ts';
import type { MemSlice } from './mem-slice.ts';
import type { EngineOptions } from './options.ts';
import type { PointerKeeper } from './pointer-keeper.ts';
import type { SnapshotCapture, SnapshotWritten } from './snapshot-writer.ts';
import type { SpilledSlice, StreamingTransaction } from './streaming-transaction.ts';
import type { TableState } from './table-state.ts';

export type TableEvent =
  | {
      type: 'apply';
      lsn: Lsn;
      ops: Operations;
      checkpoint?: [string, string];
      idem?: IdempotentWrite;
      /** The schema the operations were decoded in (the table's current one when absent). */
      schema?: TableSchema;
    }
  | { type: 'schema'; lsn: Lsn; evolved: EvolvedSchema; inline: boolean; resolve?: () => void }
  | { type: 'applied-wait'; lsn: Lsn; resolve: () => void }
  | { type: 'stream-op'; xid: string; op: DecodedOp; schema?: TableSchema }
  | { type: 'stream-commit'; xid: string; lsn: Lsn; checkpoint?: [string, string]; idem?: IdempotentWrite }
  | { type: 'stream-abort'; xid: string }
  | { type: 'advance'; lsn: Lsn; checkpoint?: [string, string] }
  | { type: 'truncate'; lsn: Lsn; checkpoint?: [string, string] }
  | FlushDone
  | {
      type: 'spill-done';
      txn: StreamingTransaction;
      spilled: SpilledSlice;
      result?: FlushResult;
      error?: unknown;
    }
  | { type: 'snapshot' }
  | { type: 'snapshot-done'; capture: SnapshotCapture; written?: SnapshotWritten; error?: unknown }
  | { type: 'read'; waiter: SnapshotWaiter }
  | { type: 'commit'; waiter?: CommitWaiter; minLsn?: Lsn }
  | { type: 'properties'; change: PropertyChange; waiter: CommitWaiter }
  | { type: 'partitioning'; spec: PartitionSpec; lastPartitionId: number; waiter: CommitWaiter }
  | { type: 'commit-done'; plan: CommitPlan; outcome?: CommitOutcome; error?: unknown }
  /** `busy`: writes kept the loop busy (timed passes), so small files may wait. */
  | { type: 'compact'; busy?: boolean }
  | { type: 'compaction-done'; plan: CompactionPlan; result?: CompactionResult; error?: unknown }
  | { type: 'index-merged'; done?: { inputs: IndexRun[]; merged: IndexRun }; error?: unknown };

export interface FlushDone {
  type: 'flush-done';
  slice: MemSlice;
  fileId: FileId;
  rows: Uint32Array;
  key: string;
  /** Keys of the files after the first (a partitioned flush). */
  extra?: string[];
  result?: FlushResult;
  error?: unknown;
}

/** Events ordered with the transactions (a requested commit comes after those posted before it). */
export function isDataEvent(e: TableEvent): boolean {
  switch (e.type) {
    case 'apply':
    case 'schema':
    case 'stream-op':
    case 'stream-commit':
    case 'stream-abort':
    case 'advance':
    case 'truncate':
      return true;
    case 'commit':
      return e.waiter !== undefined;
    default:
      return false;
  }
}

export interface TableHandlerDeps {
  def: TableDefinition;
  store: ObjectStore;
  catalog: Catalog;
  pool: ParquetWorkerPool;
  options: EngineOptions;
  logger: Logger;
  spillDir: string;
  pointer: PointerKeeper;
  iceberg: IcebergTable;
  /** Time and timers (default: the system's; a VirtualClock in simulations). */
  clock?: Clock;
  /** Ids in object keys (default: random UUIDs). */
  newId?: NewId;
  /** Called once when the handler stops because another writer took the table. */
  onFenced?: (e: Error) => void;
  /** Called after each Iceberg commit with the LSN it covers (the log may drop up to it). */
  onCommitted?: (lsn: Lsn, checkpoints: Record<string, string>) => void;
  /** Bytes the writer may still take under its memory budget (caps a compaction's size). */
  memoryHeadroom?: () => number;
}

/** Initial state from recovery (see table-loader.ts). */
export interface RecoveredState {
  files: DataFile[];
  runs: IndexRun[];
  nextFileId: FileId;
  lsn: Lsn;
  checkpoints: Record<string, string>;
  /**
   * The read pointer's LSN when the table was opened (readers may have seen it): no snapshot
   * below it is published, so reads never go back across a restart.
   */
  pointerLsn?: Lsn;
  /** Idempotency keys the last commit kept, and the object holding them. */
  idempotency?: IdempotencyKeys;
  idempotencyKey?: string;
}

export interface TableContext {
  readonly name: string;
  readonly tableRoot: string;
  readonly ephemeralRoot: string;
  readonly deps: TableHandlerDeps;
  readonly options: EngineOptions;
  readonly clock: Clock;
  readonly newId: NewId;
  readonly log: Logger;
  readonly state: TableState;
  readonly sched: MaintenanceScheduler;
  readonly gc: GarbageCollector;
  /** Every partition spec and schema of the table, by id. */
  readonly specs: Map<number, PartitionSpec>;
  readonly schemas: Map<number, TableSchema>;
  /** Data files being written (flushes, spills, compaction outputs): kept from the orphan sweep until installed. */
  readonly writesInFlight: Set<string>;
  /** Hands a job's result (or a request) to the loop. */
  post(e: TableEvent): void;
  /** Set once another writer took the table. */
  readonly fenced: Error | undefined;
  readonly stopped: boolean;
  fence(e: Error): void;
  /** After a commit or compaction: starts what the scheduler says runs next. */
  afterMaintenance(): void;
}
