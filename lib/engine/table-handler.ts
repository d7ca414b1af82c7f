/**
 * TableHandler: the writer's state for one table and the event loop that changes it.
 *
 * Write path, top to bottom:
 *   transaction (from the durable log) → `apply`: each op looks its key up in the index
 *   (MemSlice key maps, then the file index); an old row in memory is marked deleted there, an
 *   old row in a data file becomes a bit in that file's deletion vector; new rows append to the
 *   active MemSlice → past the threshold the slice is frozen and flushed to Parquet (async,
 *   `flush-done`) → read snapshots publish the state every second or on demand (async,
 *   `snapshot-done`) → Iceberg commits every 30 s or on flush (async, `commit-done`) →
 *   compaction and garbage collection keep files few and storage clean.
 *
 * Every handler below is synchronous; nothing awaits on the loop.
 */

import { randomUUID } from 'node:crypto';
import type { Catalog } from '../catalog/catalog.ts';
import { encodeDeletionVector } from '../iceberg/deletion-vector.ts';
import type { IcebergTable, PropertyChange } from '../iceberg/iceberg-table.ts';
import { RoaringBitmap64 } from '../iceberg/roaring.ts';
import { type Lsn, lsnToJson, maxLsn } from '../lsn.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import { rowMapper } from '../schema/evolve-values.ts';
import { type PartitionSpec, partitionRecord, withDroppedFields } from '../schema/partition-spec.ts';
import type { EvolvedSchema } from '../schema/schema-change.ts';
import type { TableDefinition, TableSchema } from '../schema/table-schema.ts';
import type { ObjectStore } from '../store/object-store.ts';
import { OP_DELETE, OpBatch, type Operations } from '../txn/op-batch.ts';
import { type DecodedOp, type RowCodec, rowCodec } from '../txn/transaction.ts';
import type { Logger } from '../util/logger.ts';
import type { MirroredTable } from './catalog-mirror.ts';
import { planLayoutCompaction } from './compaction-groups.ts';
import { type CompactionPlan, type CompactionResult, compactionMemory, runCompaction } from './compactor.ts';
import { type DataFile, dataFileKey, liveRowCount, newDataFile, PendingDeletes } from './data-file.ts';
import { EventLoop } from './event-loop.ts';
import { FileIndex } from './file-index.ts';
import { type FlushedFile, type FlushJob, type FlushResult, writeSliceToFile } from './flusher.ts';
import { GarbageCollector } from './garbage-collector.ts';
import { buildCommit, type CommitOutcome, type CommitPlan, runCommit } from './iceberg-committer.ts';
import { IdempotencyKeys, type IdempotencyRecord, type IdempotentWrite } from './idempotency.ts';
import type { IndexRun } from './index-run.ts';
import { hashHi, hashKey, hashLo } from './key-hash.ts';
import { LoadGauge } from './load-gauge.ts';
import { MemSlice, type TailSegment } from './mem-slice.ts';
import type { EngineOptions } from './options.ts';
import type { PointerKeeper } from './pointer-keeper.ts';
import { hasLayout, type RowLayout } from './row-layout.ts';
import { snapshotObjectKeys } from './snapshot-manifest.ts';
import {
  type CapturedBlob,
  type CapturedFile,
  type CapturedTail,
  type SnapshotCapture,
  type SnapshotWritten,
  writeSnapshot,
} from './snapshot-writer.ts';
import { type SpilledSlice, StreamingTransaction } from './streaming-transaction.ts';
import { ephemeralRootOf, tableRootOf } from './table-paths.ts';

type TableEvent =
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
  | {
      type: 'flush-done';
      slice: MemSlice;
      fileId: number;
      rows: Uint32Array;
      key: string;
      /** Keys of the files after the first (a partitioned flush). */
      extra?: string[];
      result?: FlushResult;
      error?: unknown;
    }
  | {
      type: 'spill-done';
      txn: StreamingTransaction;
      spilled: SpilledSlice;
      result?: FlushResult;
      error?: unknown;
    }
  | { type: 'snapshot'; minLsn?: Lsn }
  | { type: 'snapshot-done'; capture: SnapshotCapture; written?: SnapshotWritten; error?: unknown }
  | { type: 'read'; minLsn: Lsn; waiter: SnapshotWaiter }
  | { type: 'commit'; waiter?: CommitWaiter; minLsn?: Lsn }
  | { type: 'properties'; change: PropertyChange; waiter: CommitWaiter }
  | { type: 'partitioning'; spec: PartitionSpec; lastPartitionId: number; waiter: CommitWaiter }
  | { type: 'commit-done'; plan: CommitPlan; outcome?: CommitOutcome; error?: unknown }
  /** `busy`: writes kept the loop busy (timed passes), so small files may wait. */
  | { type: 'compact'; busy?: boolean }
  | { type: 'compaction-done'; plan: CompactionPlan; result?: CompactionResult; error?: unknown }
  | { type: 'index-merged'; done?: { inputs: IndexRun[]; merged: IndexRun }; error?: unknown };

/** Attempts of an Iceberg commit before a flush request fails (transient store errors). */
const MAX_COMMIT_RETRIES = 6;

const DATA_EVENTS = new Set([
  'apply',
  'schema',
  'stream-op',
  'stream-commit',
  'stream-abort',
  'advance',
  'truncate',
]);

export interface PublishedSnapshot {
  lsn: Lsn;
  key: string;
  seq: number;
}

interface SnapshotWaiter {
  minLsn: Lsn;
  resolve: (s: PublishedSnapshot) => void;
  reject: (e: unknown) => void;
}

export interface CommitInfo {
  lsn: Lsn;
  metadataLocation: string | undefined;
  snapshotId: number | undefined;
}

interface CommitWaiter {
  resolve: (c: CommitInfo) => void;
  reject: (e: unknown) => void;
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
  nextFileId: number;
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

/** How long a reopened table waits for replay to reach its old pointer before publishing anyway. */
const SNAPSHOT_HOLD_MAX_MS = 30_000;

export interface TableStatus {
  lsn: Lsn;
  snapshotLsn: Lsn;
  committedLsn: Lsn;
  dataFiles: number;
  dataFileBytes: number;
  rows: number;
  memRows: number;
  memBytes: number;
  flushing: number;
  indexEntries: number;
  indexRuns: number;
  indexMemoryBytes: number;
  /** What a running compaction is counted at against the memory budget (compactionMemory). */
  compactionMemoryBytes: number;
  pendingDeletes: number;
  compactions: number;
  /** Timed compaction passes that waited because writes kept the loop busy. */
  compactionsDeferred: number;
  /** Compactions that failed (their inputs stay; the next pass tries again). */
  compactionsFailed: number;
  metadataLocation: string | undefined;
  checkpoints: Record<string, string>;
  /** How long the oldest change not in an Iceberg commit has waited (0 when all are committed). */
  commitLagMs: number;
}

/** The writer's figures of a table as `GET /tables/{name}` shows them under `writer`. */
export function writerStatusJson(s: TableStatus): Record<string, unknown> {
  return {
    appliedLsn: lsnToJson(s.lsn),
    memRows: s.memRows,
    memBytes: s.memBytes,
    flushing: s.flushing,
    dataFiles: s.dataFiles,
    indexEntries: s.indexEntries,
    indexRuns: s.indexRuns,
    indexMemoryBytes: s.indexMemoryBytes,
    compactionMemoryBytes: s.compactionMemoryBytes,
    compactions: s.compactions,
    compactionsDeferred: s.compactionsDeferred,
    compactionsFailed: s.compactionsFailed,
    commitLagMs: s.commitLagMs,
  };
}

export class TableHandler {
  readonly name: string;
  readonly tableRoot: string;
  readonly ephemeralRoot: string;
  readonly def: TableDefinition;
  private codec: RowCodec;
  /** The schema of the rows applied so far (changes at a schema-change event). */
  private schema: TableSchema;
  /** The table's `last-column-id` as of the last change posted (new field ids go above it). */
  private postedLastColumnId: number;
  /** Every schema the table had, by id, up to the latest posted change (decoding old records). */
  private readonly schemas = new Map<number, TableSchema>();
  /** The schema as of the last event posted (what a record logged now is decoded in). */
  private postedSchema: TableSchema;
  /** The LSN each schema posted by this process became current at. */
  private readonly schemaLsns = new Map<number, Lsn>();
  private readonly openedAtLsn: Lsn;
  /** Schema changes applied and not yet in an Iceberg commit (with their LSNs). */
  private pendingSchemas: { lsn: Lsn; evolved: EvolvedSchema }[] = [];
  /** How new data files are partitioned and sorted (the Iceberg metadata's defaults). */
  private layout: RowLayout;
  /** Every partition spec of the table (those set by this process too), by id. */
  private readonly specs: Map<number, PartitionSpec>;
  private postedLastPartitionId: number;
  private readonly partitionRecords = new WeakMap<DataFile, Record<string, unknown>>();
  /** A partition spec set and not yet committed to the Iceberg metadata. */
  private pendingPartitioning: { spec: PartitionSpec; lastPartitionId: number } | undefined;
  private readonly hasKey: boolean;
  private readonly loop: EventLoop<TableEvent>;
  private readonly log: Logger;

  // ---- table state (changed only by event handlers) ----
  private active: MemSlice;
  /** Slices frozen for flushing, oldest first. */
  private frozen: MemSlice[] = [];
  private readonly files = new Map<number, DataFile>();
  private nextFileId: number;
  private readonly index: FileIndex;
  private readonly pendingDeletes = new PendingDeletes();
  private readonly streams = new Map<string, StreamingTransaction>();
  private appliedLsn: Lsn;
  /** No read snapshot is published below this LSN (the pointer found at open); 0 when released. */
  private holdSnapshotsBelow: Lsn = 0n;
  private holdSince = 0;
  private checkpoints: Record<string, string>;
  /** Bumped on every change a read snapshot would show. */
  private stateVersion = 0;

  // ---- read snapshots ----
  private published: (PublishedSnapshot & { stateVersion: number; keys: Set<string> }) | undefined;
  private snapshotSeq = 0;
  private snapshotInFlight = false;
  private snapshotWanted = false;
  private readonly waiters: SnapshotWaiter[] = [];
  private inFlightKeys = new Set<string>();
  /** Data files being written (flushes, spills, compaction outputs), kept from the orphan sweep until installed. */
  private readonly writesInFlight = new Set<string>();

  // ---- Iceberg commits and compaction: one at a time ----
  private maintenance: 'idle' | 'committing' | 'compacting' = 'idle';
  /** A background merge of index runs: running, or done and waiting for a commit to finish. */
  private indexMerge: 'running' | { inputs: IndexRun[]; merged: IndexRun } | undefined;
  /** Memory a compaction in flight holds (an estimate), for the writer's budget. */
  private compactingBytes = 0;
  /** Bytes a row takes in memory decoded (the last frozen slice's average). */
  private rowBytes = 100;
  private commitWaiters: CommitWaiter[] = [];
  private commitRequested = false;
  private compactRequested = false;
  private compactRequestBusy = false;
  /** Flush requests waiting for their LSN to be applied. */
  private deferredCommits: Extract<TableEvent, { type: 'commit' }>[] = [];
  /** Callers waiting for the table to have applied an LSN (idempotent writes). */
  private appliedWaiters: Extract<TableEvent, { type: 'applied-wait' }>[] = [];
  /** Idempotency keys applied within the retention window, and what the last commit wrote of them. */
  private idempotency!: IdempotencyKeys;
  private committedIdempotencyKey: string | undefined;
  private idempotencyWritten = { version: -1, complete: false };
  /** Property changes waiting for the next commit (REST catalog). */
  private pendingProperties: PropertyChange[] = [];
  private commitFlushTarget: Lsn | undefined;
  private committedLsn: Lsn;
  private metadataLocation: string | undefined;
  private lastSnapshotId: number | undefined;
  /** Index runs the last Iceberg commit lists (recovery reads them). */
  private committedIndexKeys: string[] = [];
  private committedMetadataKey: string | undefined;
  private committedCheckpoints: Record<string, string> = {};
  /** The last Iceberg commit is not in the catalog pointer yet. */
  private pointerBehind = false;
  /** Keys of Iceberg data files that compaction replaced since the last commit. */
  private removedSinceCommit: string[] = [];
  private changedSinceCommit = false;
  /** When the oldest change no Iceberg commit holds yet was made (ms), for the commit lag. */
  private uncommittedSince: number | undefined;
  private flushesInFlight = 0;
  private commitFailures = 0;
  private compactions = 0;
  /** Timed passes that left enough small files to merge for later because writes kept the loop busy. */
  private compactionsDeferred = 0;
  private compactionsFailed = 0;
  private readonly load = new LoadGauge();
  private flushRetryMs = 100;

  private readonly gc: GarbageCollector;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private fenced: Error | undefined;

  constructor(
    private readonly deps: TableHandlerDeps,
    recovered: RecoveredState,
  ) {
    this.def = deps.def;
    this.name = deps.def.name;
    this.tableRoot = tableRootOf(this.def);
    this.ephemeralRoot = ephemeralRootOf(this.def);
    // The schema of the last Iceberg commit: changes after it replay from the log.
    this.schema = deps.iceberg.schema();
    this.postedSchema = this.schema;
    this.postedLastColumnId = deps.iceberg.lastColumnId;
    for (const sc of deps.iceberg.schemas()) this.schemas.set(sc.schemaId, sc);
    this.schemas.set(this.schema.schemaId, this.schema);
    this.codec = rowCodec(this.schema);
    this.hasKey = this.codec.keyColumns.length > 0;
    const spec = deps.iceberg.spec();
    this.specs = deps.iceberg.specs();
    this.postedLastPartitionId = deps.iceberg.lastPartitionId;
    this.layout = { spec, order: deps.iceberg.sortOrder() };
    this.log = deps.logger.child({ table: this.name });
    this.active = this.newSlice();
    this.index = new FileIndex({
      memoryBudgetBytes: deps.options.indexMemoryBytes,
      spillDir: deps.spillDir,
      maxRuns: deps.options.indexMaxRuns,
    });
    for (const f of recovered.files) this.files.set(f.fileId, f);
    for (const r of recovered.runs) this.index.add(r);
    this.nextFileId = recovered.nextFileId;
    this.committedIndexKeys = recovered.runs.map((r) => r.persistedKey!).filter(Boolean);
    this.appliedLsn = recovered.lsn;
    this.committedLsn = recovered.lsn;
    this.openedAtLsn = recovered.lsn;
    this.holdSnapshotsBelow = recovered.pointerLsn ?? 0n;
    this.idempotency =
      recovered.idempotency ??
      new IdempotencyKeys({
        retentionMs: deps.options.idempotencyRetentionMs,
        maxKeys: deps.options.idempotencyMaxKeys,
      });
    this.committedIdempotencyKey = recovered.idempotencyKey;
    this.idempotencyWritten = { version: this.idempotency.version, complete: true };
    this.holdSince = Date.now();
    this.checkpoints = { ...recovered.checkpoints };
    this.metadataLocation = deps.iceberg.metadataLocation();
    this.committedMetadataKey = deps.iceberg.metadataKey;
    this.committedCheckpoints = { ...recovered.checkpoints };
    this.lastSnapshotId = deps.iceberg.currentSnapshot()?.['snapshot-id'];
    this.gc = new GarbageCollector({
      table: this.name,
      roots: [this.tableRoot, this.ephemeralRoot],
      store: deps.store,
      catalog: deps.catalog,
      logger: this.log,
      orphanGraceMs: deps.options.orphanGraceMs,
      candidateGraceMs: deps.options.candidateGraceMs,
      inUse: () => this.keysInUse(),
      icebergKeys: () => deps.iceberg.referencedKeys(),
    });
    this.loop = new EventLoop<TableEvent>(
      (e) => this.handle(e),
      // A requested commit is ordered after the transactions posted before it.
      (e) => DATA_EVENTS.has(e.type) || (e.type === 'commit' && e.waiter !== undefined),
      (err, e) => this.log.error('event handler failed', { event: e.type, error: err }),
      // A request waiting on an event that will never run fails instead of hanging.
      (e) => {
        if ((e.type === 'read' || e.type === 'commit') && e.waiter)
          e.waiter.reject(this.fenced ?? new Error(`table "${this.name}" is closed`));
      },
    );
  }

  /**
   * Lets snapshots below the pointer found at open be published (a damaged log: its intact
   * prefix is all there is, and reads must show what this writer holds).
   */
  releaseSnapshotHold(): void {
    this.holdSnapshotsBelow = 0n;
  }

  /** Starts the periodic snapshot, commit, compaction and GC work. */
  start(): void {
    const o = this.deps.options;
    const every = (ms: number, fn: () => void): void => {
      if (ms <= 0) return;
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(o.snapshotIntervalMs, () => this.loop.post({ type: 'snapshot' }));
    every(o.commitIntervalMs, () => this.loop.post({ type: 'commit' }));
    if (o.compaction)
      every(Math.max(1000, o.commitIntervalMs / 3), () =>
        this.loop.post({ type: 'compact', busy: this.load.read() > o.compactYieldUtilization }),
      );
    every(o.gcIntervalMs, () => {
      this.collectGarbage().catch((e) =>
        this.log.warn('garbage collection failed; will retry', { error: e }),
      );
    });
    // Orphans (objects a crash left behind that nothing refers to): once soon after start, then periodically.
    const sweep = (): void => {
      this.collectGarbage({ orphans: true }).catch((e) =>
        this.log.warn('orphan sweep failed; will retry', { error: e }),
      );
    };
    if (o.gcIntervalMs > 0 && o.orphanSweepIntervalMs > 0) {
      this.startupSweep = setTimeout(sweep, Math.min(o.orphanSweepIntervalMs, 60_000));
      this.startupSweep.unref();
      every(o.orphanSweepIntervalMs, sweep);
    }
    this.loop.post({ type: 'snapshot' });
  }

  /** A new active slice, sized for as many rows as the one before it reached (at most 4 M). */
  private newSlice(expectedRows = 1024): MemSlice {
    return new MemSlice(this.schema.fields, this.hasKey, Math.min(expectedRows, 4 << 20));
  }

  // =========================================================================================
  // Public API (posts events; promises settle when the loop has done the work)

  /**
   * Applies a whole transaction from the log; `schema`: the one its operations were decoded in,
   * when not the table's current one (an OpBatch says its own).
   */
  apply(
    lsn: Lsn,
    ops: Operations,
    checkpoint?: [string, string],
    idem?: IdempotentWrite,
    schema?: TableSchema,
  ): void {
    this.queuedOps += ops.length;
    this.loop.post({ type: 'apply', lsn, ops, checkpoint, idem, schema });
  }

  /**
   * Changes the table's schema at `lsn`, ordered with the transactions (resolves once applied).
   * `inline`: the change belongs to the transaction logged at `lsn` (a record that added
   * columns), which is applied right after it at the same LSN.
   */
  changeSchema(lsn: Lsn, evolved: EvolvedSchema, inline = false): Promise<void> {
    this.schemas.set(evolved.schema.schemaId, evolved.schema);
    this.schemaLsns.set(evolved.schema.schemaId, lsn);
    this.postedSchema = evolved.schema;
    this.postedLastColumnId = Math.max(this.postedLastColumnId, evolved.lastColumnId);
    return new Promise((resolve) => this.loop.post({ type: 'schema', lsn, evolved, inline, resolve }));
  }

  /** Resolves once every transaction through `lsn` is applied. */
  appliedThrough(lsn: Lsn): Promise<void> {
    if (lsn <= this.appliedLsn) return Promise.resolve();
    return new Promise((resolve) => this.loop.post({ type: 'applied-wait', lsn, resolve }));
  }

  /** The schema a record logged now is in (every change posted so far applied). */
  get latestSchema(): TableSchema {
    return this.postedSchema;
  }

  /** The table's `last-column-id` as of the latest change posted. */
  get latestLastColumnId(): number {
    return this.postedLastColumnId;
  }

  /** Every schema the table had, oldest first (the newest posted last). */
  schemaHistory(): TableSchema[] {
    return [...this.schemas.values()].sort((a, b) => a.schemaId - b.schemaId);
  }

  /**
   * The LSN at which a schema became the table's (a change posted by this process), or the LSN
   * the table opened at for schemas it found in Iceberg (they became current at or before it).
   */
  schemaChangedAt(id: number): Lsn {
    return this.schemaLsns.get(id) ?? this.openedAtLsn;
  }

  /** A schema the table had (for records written in it), or undefined. */
  schemaById(id: number): TableSchema | undefined {
    return this.schemas.get(id);
  }

  /**
   * What the write with this Idempotency-Key did (its LSN, count and body hash), once the table
   * has applied everything through `afterLsn`; undefined when no write with the key was applied.
   */
  async idempotencyRecord(key: string, afterLsn: Lsn = 0n): Promise<IdempotencyRecord | undefined> {
    if (afterLsn > this.appliedLsn) {
      await new Promise<void>((resolve) => this.loop.post({ type: 'applied-wait', lsn: afterLsn, resolve }));
    }
    return this.idempotency.get(key);
  }

  /** Operations posted and not yet applied (they hold memory: counted in memoryBytes). */
  private queuedOps = 0;

  /** Records that the source moved to `lsn` without a change to this table (e.g. another table's transaction). */
  advance(lsn: Lsn, checkpoint?: [string, string]): void {
    this.loop.post({ type: 'advance', lsn, checkpoint });
  }

  /** Empties the table at `lsn` (e.g. a Postgres TRUNCATE). */
  truncate(lsn: Lsn, checkpoint?: [string, string]): void {
    this.loop.post({ type: 'truncate', lsn, checkpoint });
  }

  /** One operation of a streamed transaction; `schema`: the one it was decoded in, if not the current. */
  streamOp(xid: string, op: DecodedOp, schema?: TableSchema): void {
    this.loop.post({ type: 'stream-op', xid, op, schema });
  }

  /**
   * Commits a streamed transaction at `lsn` (nothing but the LSN when it is not open here: a
   * replay after a restart). With `idem`, the commit is kept as an idempotency record under its
   * key (what an import checks after a restart: did its commit reach Iceberg).
   */
  streamCommit(xid: string, lsn: Lsn, checkpoint?: [string, string], idem?: IdempotentWrite): void {
    this.loop.post({ type: 'stream-commit', xid, lsn, checkpoint, idem });
  }

  streamAbort(xid: string): void {
    this.loop.post({ type: 'stream-abort', xid });
  }

  /** Resolves with a published read snapshot covering at least `minLsn` (publishing one if needed). */
  snapshotAtLeast(minLsn: Lsn): Promise<PublishedSnapshot> {
    if (this.fenced) return Promise.reject(this.fenced);
    return new Promise((resolve, reject) =>
      this.loop.post({ type: 'read', minLsn, waiter: { minLsn, resolve, reject } }),
    );
  }

  /**
   * Makes everything posted so far (and, with `minLsn`, everything up to that LSN once it has
   * arrived) durable as Parquet and commits it to Iceberg.
   */
  flush(minLsn?: Lsn): Promise<CommitInfo> {
    if (this.fenced) return Promise.reject(this.fenced);
    return new Promise((resolve, reject) =>
      this.loop.post({ type: 'commit', waiter: { resolve, reject }, minLsn }),
    );
  }

  /**
   * Sets and removes Iceberg table properties (REST catalog commits): taken into the next
   * commit, which happens now; resolves once it is committed.
   */
  updateProperties(change: PropertyChange): Promise<CommitInfo> {
    if (this.fenced) return Promise.reject(this.fenced);
    return new Promise((resolve, reject) =>
      this.loop.post({ type: 'properties', change, waiter: { resolve, reject } }),
    );
  }

  /**
   * Makes `spec` the table's partition spec (partition evolution): files written from now on
   * use it, files already written keep theirs, compaction rewrites them into it. Resolves once
   * the spec is committed to the Iceberg metadata.
   */
  setPartitioning(spec: PartitionSpec, lastPartitionId: number): Promise<CommitInfo> {
    if (this.fenced) return Promise.reject(this.fenced);
    this.postedLastPartitionId = Math.max(this.postedLastPartitionId, lastPartitionId);
    this.specs.set(spec.specId, spec);
    return new Promise((resolve, reject) =>
      this.loop.post({ type: 'partitioning', spec, lastPartitionId, waiter: { resolve, reject } }),
    );
  }

  /** Every partition spec of the table, by id (those set and not yet committed too). */
  partitionSpecs(): Map<number, PartitionSpec> {
    return new Map(this.specs);
  }

  /** The highest partition field id the table used (Iceberg's `last-partition-id`). */
  get lastPartitionId(): number {
    return this.postedLastPartitionId;
  }

  /** The table's partition spec and sort order (as set; committed once setPartitioning resolves). */
  get fileLayout(): RowLayout {
    return { spec: this.layout.spec, order: this.layout.order };
  }

  /** A partitioned data file's spec and partition as snapshots show them (computed once per file). */
  private partitionOf(f: DataFile): { specId?: number; partition?: Record<string, unknown> } {
    if (f.partition.length === 0) return {};
    let record = this.partitionRecords.get(f);
    if (!record) {
      const spec = this.specs.get(f.specId);
      if (!spec) return {};
      record = partitionRecord(
        spec,
        withDroppedFields(this.schema.fields, this.schemas.values()),
        f.partition,
      );
      this.partitionRecords.set(f, record);
    }
    return { specId: f.specId, partition: record };
  }

  /** What catalog mirrors need of the table's current Iceberg metadata. */
  mirrored(): MirroredTable {
    const ice = this.deps.iceberg;
    return {
      table: this.name,
      tableUuid: ice.metadata['table-uuid'],
      tableLocation: ice.metadata.location,
      metadataLocation: ice.metadataLocation(),
      schema: ice.schema(),
    };
  }

  /** Asks for a compaction pass now (tests and operators). */
  compactNow(): void {
    this.loop.post({ type: 'compact' });
  }

  get lsn(): Lsn {
    return this.appliedLsn;
  }

  /**
   * What this table holds in memory for the writer's budget: rows in slices (buffered and
   * frozen), index runs in memory, and a compaction in flight (its inputs and outputs decoded:
   * about two in-memory rows per input row).
   */
  memoryBytes(): number {
    // Transactions waiting for the loop hold about a row's bytes per operation.
    let bytes = this.active.byteSize + this.index.memoryBytes + this.queuedOps * this.rowBytes;
    for (const s of this.frozen) bytes += s.byteSize;
    return bytes + this.compactingBytes;
  }

  /** The LSN of the newest published read snapshot (-1 before the first). */
  get publishedLsn(): Lsn {
    return this.published?.lsn ?? -1n;
  }

  get isFenced(): boolean {
    return this.fenced !== undefined;
  }

  private markChanged(): void {
    this.changedSinceCommit = true;
    this.uncommittedSince ??= Date.now();
  }

  status(): TableStatus {
    let rows = 0;
    let bytes = 0;
    for (const f of this.files.values()) {
      rows += liveRowCount(f);
      bytes += f.sizeBytes;
    }
    let memRows = this.active.liveCount;
    let memBytes = this.active.byteSize;
    for (const s of this.frozen) {
      memRows += s.liveCount;
      memBytes += s.byteSize;
    }
    return {
      lsn: this.appliedLsn,
      snapshotLsn: this.published?.lsn ?? 0n,
      committedLsn: this.committedLsn,
      dataFiles: this.files.size,
      dataFileBytes: bytes,
      rows: rows + memRows,
      memRows,
      memBytes,
      flushing: this.flushesInFlight,
      indexEntries: this.index.entryCount,
      indexRuns: this.index.runCount,
      indexMemoryBytes: this.index.memoryBytes,
      compactionMemoryBytes: this.compactingBytes,
      pendingDeletes: this.pendingDeletes.size,
      compactions: this.compactions,
      compactionsDeferred: this.compactionsDeferred,
      compactionsFailed: this.compactionsFailed,
      metadataLocation: this.metadataLocation,
      checkpoints: { ...this.checkpoints },
      commitLagMs: this.uncommittedSince === undefined ? 0 : Date.now() - this.uncommittedSince,
    };
  }

  /** Data files now (for tests and describe). */
  dataFiles(): { key: string; rowCount: number; liveRows: number; sizeBytes: number; inIceberg: boolean }[] {
    return [...this.files.values()].map((f) => ({
      key: f.key,
      rowCount: f.rowCount,
      liveRows: liveRowCount(f),
      sizeBytes: f.sizeBytes,
      inIceberg: f.inIceberg,
    }));
  }

  /** Stops timers and the loop. With `flush`, first commits everything applied. */
  async close(options: { flush?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    if (options.flush && !this.fenced) {
      try {
        await this.flush();
      } catch (e) {
        this.log.warn('final flush failed', { error: e });
      }
    }
    this.stopTimers();
    this.stopped = true;
    this.rejectWaiting(new Error(`table "${this.name}" is closed`));
    this.index.clear();
  }

  private startupSweep: NodeJS.Timeout | undefined;

  private stopTimers(): void {
    if (this.startupSweep) clearTimeout(this.startupSweep);
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
  }

  // =========================================================================================
  // The loop

  private handle(e: TableEvent): void {
    if (this.stopped) return;
    switch (e.type) {
      case 'apply':
        this.queuedOps -= e.ops.length;
        return this.onApply(e.lsn, this.inCurrentSchema(e.ops, e.schema), e.checkpoint, e.idem);
      case 'schema':
        this.onSchema(e.lsn, e.evolved, e.inline);
        e.resolve?.();
        return;
      case 'applied-wait':
        if (e.lsn <= this.appliedLsn) return e.resolve();
        this.appliedWaiters.push(e);
        return;
      case 'advance':
        return this.onAdvance(e.lsn, e.checkpoint);
      case 'truncate':
        return this.onTruncate(e.lsn, e.checkpoint);
      case 'stream-op':
        return this.onStreamOp(e.xid, e.op, e.schema);
      case 'stream-commit':
        return this.onStreamCommit(e.xid, e.lsn, e.checkpoint, e.idem);
      case 'stream-abort':
        return this.onStreamAbort(e.xid);
      case 'flush-done':
        return this.onFlushDone(e);
      case 'spill-done':
        return this.onSpillDone(e);
      case 'snapshot':
        return this.onSnapshot();
      case 'snapshot-done':
        return this.onSnapshotDone(e.capture, e.written, e.error);
      case 'read':
        return this.onRead(e.waiter);
      case 'commit':
        if (e.minLsn !== undefined && e.minLsn > this.appliedLsn) {
          this.deferredCommits.push(e);
          return;
        }
        return this.onCommit(e.waiter);
      case 'properties':
        this.pendingProperties.push(e.change);
        return this.onCommit(e.waiter);
      case 'partitioning':
        // Files flushed from now on use the new spec; it is in the metadata of the commit that
        // adds the first of them (the one asked for here).
        this.pendingPartitioning = { spec: e.spec, lastPartitionId: e.lastPartitionId };
        this.layout = { ...this.layout, spec: e.spec };
        return this.onCommit(e.waiter);
      case 'commit-done':
        return this.onCommitDone(e.plan, e.outcome, e.error);
      case 'compact':
        return this.onCompact(e.busy === true);
      case 'compaction-done':
        return this.onCompactionDone(e.plan, e.result, e.error);
      case 'index-merged':
        return this.onIndexMerged(e.done, e.error);
    }
  }

  // ---- transactions ----

  private onApply(lsn: Lsn, ops: Operations, checkpoint?: [string, string], idem?: IdempotentWrite): void {
    if (lsn <= this.appliedLsn) return; // already applied before a restart: exactly once
    if (idem) {
      // A second write with the same key (a client's retry) is skipped; the first one counts.
      if (this.idempotency.get(idem.key)) return this.advanceTo(lsn, checkpoint);
      this.idempotency.add(idem.key, { lsn, count: ops.length, hash: idem.hash, at: Date.now() });
    }
    if (ops instanceof OpBatch) this.applyBatch(ops, lsn);
    else for (const op of ops) this.applyOp(op, lsn);
    this.advanceTo(lsn, checkpoint);
  }

  /** {@link applyOp} for each operation of a batch, its values copied column to column. */
  private applyBatch(batch: OpBatch, lsn: Lsn): void {
    const { kinds, keys } = batch;
    for (let i = 0; i < batch.length; i++) {
      const key = keys?.[i];
      if (key === undefined) {
        this.active.appendFrom(batch, i, undefined);
      } else {
        hashKey(key);
        const hi = hashHi();
        const lo = hashLo();
        this.deleteKey(key, hi, lo, lsn);
        if (kinds[i] === OP_DELETE) continue;
        this.active.appendFrom(batch, i, key, hi, lo);
      }
      this.maybeFreeze(lsn);
    }
  }

  /** One operation: the key's old row (if any) is deleted, a new row appended unless it is a delete. */
  private applyOp(op: DecodedOp, lsn: Lsn): void {
    const key = op.key;
    if (key === undefined) {
      this.active.append(op.values, undefined);
    } else {
      hashKey(key);
      const hi = hashHi();
      const lo = hashLo();
      this.deleteKey(key, hi, lo, lsn);
      if (op.op === 'delete') return;
      this.active.append(op.values, key, hi, lo);
    }
    this.maybeFreeze(lsn);
  }

  /** Operations decoded in an older schema, in the current one (by field id). */
  private inCurrentSchema(ops: Operations, schema: TableSchema | undefined): Operations {
    const from = ops instanceof OpBatch ? ops.schema : (schema ?? this.schema);
    if (from.schemaId === this.schema.schemaId) return ops;
    const map = rowMapper(from, this.schema);
    const list = ops instanceof OpBatch ? ops.ops() : ops;
    return list.map((o) => ({ ...o, values: map(o.values) }));
  }

  /**
   * A schema change: rows in memory keep their schema (the active slice is frozen and flushes
   * in it), rows from now on are in the new one, and the next Iceberg commit adds it.
   */
  private onSchema(lsn: Lsn, evolved: EvolvedSchema, inline: boolean): void {
    if (lsn <= this.appliedLsn) return; // replayed: Iceberg has it already
    if (evolved.schema.schemaId <= this.schema.schemaId) {
      if (!inline) this.advanceTo(lsn);
      return;
    }
    this.freezeActive(this.appliedLsn);
    this.schema = evolved.schema;
    this.codec = rowCodec(evolved.schema);
    this.active = this.newSlice();
    this.pendingSchemas.push({ lsn, evolved });
    this.stateVersion++;
    this.markChanged();
    this.log.info('schema changed', { schemaId: evolved.schema.schemaId, lsn });
    // Engines see the new schema (the Iceberg metadata, Glue) soon, not at the next interval (a
    // second later: changes made together, or replayed together, go into one commit).
    setTimeout(() => this.loop.post({ type: 'commit' }), this.deps.options.schemaCommitDelayMs).unref();
    if (!inline) this.advanceTo(lsn);
  }

  private onAdvance(lsn: Lsn, checkpoint?: [string, string]): void {
    if (lsn <= this.appliedLsn) return;
    this.advanceTo(lsn, checkpoint);
  }

  private onTruncate(lsn: Lsn, checkpoint?: [string, string]): void {
    if (lsn <= this.appliedLsn) return;
    // Rows in memory are deleted; files are marked and leave at the next commit covering lsn.
    for (const slice of [...this.frozen, this.active]) {
      for (let r = 0; r < slice.rowCount; r++) slice.delete(r, lsn);
    }
    for (const f of this.files.values()) if (f.removedLsn === undefined) f.removedLsn = lsn;
    this.advanceTo(lsn, checkpoint);
  }

  private advanceTo(lsn: Lsn, checkpoint?: [string, string]): void {
    this.appliedLsn = lsn;
    if (this.holdSnapshotsBelow !== 0n && lsn >= this.holdSnapshotsBelow) {
      this.holdSnapshotsBelow = 0n;
      this.loop.post({ type: 'snapshot' });
    }
    if (checkpoint) this.checkpoints[checkpoint[0]] = checkpoint[1];
    this.stateVersion++;
    this.markChanged();
    this.serveWaiters();
    if (this.appliedWaiters.length > 0) {
      const ready = this.appliedWaiters.filter((w) => w.lsn <= lsn);
      this.appliedWaiters = this.appliedWaiters.filter((w) => w.lsn > lsn);
      for (const w of ready) w.resolve();
    }
    if (this.deferredCommits.length > 0) {
      const ready = this.deferredCommits.filter((c) => c.minLsn! <= lsn);
      this.deferredCommits = this.deferredCommits.filter((c) => c.minLsn! > lsn);
      for (const c of ready) this.loop.post({ type: 'commit', waiter: c.waiter });
    }
  }

  /** Deletes the live row with this key (hash hi/lo), wherever it is; a missing key is a no-op. */
  private deleteKey(key: string, hi: number, lo: number, lsn: Lsn): void {
    const row = this.active.lookup(key, hi, lo);
    if (row !== undefined) {
      this.active.delete(row, lsn);
      return;
    }
    for (let i = this.frozen.length - 1; i >= 0; i--) {
      const r = this.frozen[i].lookup(key, hi, lo);
      if (r !== undefined) {
        this.frozen[i].delete(r, lsn);
        return;
      }
    }
    const loc = this.findInFiles(hi, lo);
    if (loc) {
      loc.file.deletes.add(loc.pos);
      loc.file.dvDirty = true;
      this.pendingDeletes.add(lsn, loc.file.fileId, loc.pos);
    }
  }

  private findInFiles(hi: number, lo: number): { file: DataFile; pos: number } | undefined {
    this.found = undefined;
    this.index.find(hi, lo, this.visitIndexEntry);
    return this.found;
  }

  /** The index's answer for {@link findInFiles} (one visitor for every lookup: no closure per row). */
  private found: { file: DataFile; pos: number } | undefined;
  private readonly visitIndexEntry = (fileId: number, pos: number): boolean => {
    const file = this.files.get(fileId);
    if (!file || file.removedLsn !== undefined || file.deletes.has(pos)) return false;
    this.found = { file, pos };
    return true;
  };

  private maybeFreeze(lsn: Lsn): void {
    const o = this.deps.options;
    const rows = this.active.rowCount;
    if (rows >= o.memSliceMaxRows) return this.freezeActive(lsn);
    // The size estimate sums every column: asked every 64 rows (every row when the limit is tiny).
    if ((rows & 63) !== 0 && o.memSliceMaxBytes >= 1 << 20) return;
    if (this.active.byteSize >= o.memSliceMaxBytes) this.freezeActive(lsn);
  }

  /** Freezes the active slice and starts flushing it. */
  private freezeActive(lsn: Lsn): void {
    const slice = this.active;
    if (slice.rowCount === 0) return;
    this.rowBytes = Math.max(16, slice.byteSize / slice.rowCount);
    this.active = this.newSlice(slice.rowCount);
    slice.frozenAt = lsn;
    slice.seal();
    const rows = slice.liveRows();
    if (rows.length === 0) {
      // Nothing live: no file to write; its tail files drop out of the next snapshot.
      this.stateVersion++;
      return;
    }
    this.frozen.push(slice);
    this.startFlush(slice, rows, this.nextFileId++);
  }

  private startFlush(slice: MemSlice, rows: Uint32Array, fileId: number): void {
    this.flushesInFlight++;
    const key = dataFileKey(this.tableRoot, fileId, randomUUID());
    this.writesInFlight.add(key);
    const extra: string[] = [];
    writeSliceToFile(this.flushJob(slice, rows, fileId, key, extra), this.deps.store, this.deps.pool).then(
      (result) => this.loop.post({ type: 'flush-done', slice, fileId, rows, key, extra, result }),
      (error) => this.loop.post({ type: 'flush-done', slice, fileId, rows, key, extra, error }),
    );
  }

  /**
   * A flush of slice rows: laid out as the table is (one file per partition, sorted), the files
   * after the first under ids allocated as the flush finds its partitions (listed in `extra`,
   * kept from the orphan sweep until installed).
   */
  private flushJob(
    slice: MemSlice,
    rows: Uint32Array,
    fileId: number,
    key: string,
    extra: string[],
  ): FlushJob {
    return {
      slice,
      rows,
      fileId,
      key,
      compression: this.deps.options.dataCompression,
      layout: this.layout,
      allocate: () => {
        const id = this.nextFileId++;
        const k = dataFileKey(this.tableRoot, id, randomUUID());
        this.writesInFlight.add(k);
        extra.push(k);
        return { fileId: id, key: k };
      },
    };
  }

  private onFlushDone(e: Extract<TableEvent, { type: 'flush-done' }>): void {
    this.flushesInFlight--;
    // Installed below, or (on failure) left for the orphan sweep: a retry writes a new key.
    this.writesInFlight.delete(e.key);
    for (const k of e.extra ?? []) this.writesInFlight.delete(k);
    if (e.error || !e.result) {
      this.log.warn('flush failed; retrying', { error: e.error, retryInMs: this.flushRetryMs });
      this.flushesInFlight++;
      const delay = this.flushRetryMs;
      this.flushRetryMs = Math.min(this.flushRetryMs * 2, 30_000);
      setTimeout(() => {
        this.flushesInFlight--;
        if (!this.stopped) this.startFlush(e.slice, e.rows, e.fileId);
      }, delay).unref();
      return;
    }
    this.flushRetryMs = 100;
    for (const f of e.result.files) this.installFile(e.slice, f, e.slice.frozenAt!);
    this.frozen.splice(this.frozen.indexOf(e.slice), 1);
    this.stateVersion++;
    this.maybeMergeIndex();
    this.continueCommit();
  }

  /** A flushed slice becomes a data file: deletes made during the flush move to its deletion vector. */
  private installFile(slice: MemSlice, result: FlushedFile, addedLsn: Lsn): DataFile {
    const { fileId, rows } = result;
    const file = newDataFile({
      fileId,
      key: result.key,
      rowCount: result.rowCount,
      sizeBytes: result.sizeBytes,
      addedLsn,
      stats: result.stats,
      specId: result.specId,
      partition: result.partition,
      sortOrderId: result.sortOrderId,
    });
    if (slice.deletesAfterFreeze.length > 0) {
      const posOf = new Int32Array(slice.rowCount).fill(-1);
      for (let i = 0; i < rows.length; i++) posOf[rows[i]] = i;
      for (const d of slice.deletesAfterFreeze) {
        const pos = posOf[d.row];
        if (pos < 0) continue;
        file.deletes.add(pos);
        this.pendingDeletes.add(d.lsn, fileId, pos);
      }
      file.dvDirty = !file.deletes.isEmpty();
    }
    this.files.set(fileId, file);
    if (result.run) this.index.add(result.run);
    this.markChanged();
    return file;
  }

  /**
   * Starts a background merge of index runs when there are too many (a slice at a time, off
   * the loop's critical path); its result comes back as `index-merged`.
   */
  private maybeMergeIndex(): void {
    // A commit in flight may be persisting the current runs; merge after it.
    if (this.maintenance === 'committing' || this.stopped) return;
    if (this.indexMerge) {
      // A merge that finished during a commit is installed now.
      if (this.indexMerge !== 'running') {
        const { inputs, merged } = this.indexMerge;
        this.indexMerge = undefined;
        this.index.installMerge(inputs, merged);
        this.maybeMergeIndex();
      }
      return;
    }
    // Drop only entries a recovery could never need: rows deleted as of the last Iceberg commit
    // (a later commit's state includes those deletes) and files no longer in the table.
    const merging = this.index.mergeInBackground((fileId, pos) => {
      const f = this.files.get(fileId);
      return f !== undefined && !f.committedDeletes.has(pos);
    });
    this.indexMerge = 'running';
    merging.then(
      (done) => this.loop.post({ type: 'index-merged', done }),
      (error) => this.loop.post({ type: 'index-merged', error }),
    );
  }

  private onIndexMerged(done: { inputs: IndexRun[]; merged: IndexRun } | undefined, error: unknown): void {
    this.indexMerge = undefined;
    if (error) return this.log.warn('merging index runs failed; will retry', { error });
    if (!done) return;
    if (this.maintenance === 'committing') {
      this.indexMerge = done; // installed once the commit is done
      return;
    }
    this.index.installMerge(done.inputs, done.merged);
    this.maybeMergeIndex();
  }

  // ---- streaming transactions ----

  private stream(xid: string): StreamingTransaction {
    let t = this.streams.get(xid);
    if (!t) {
      t = new StreamingTransaction(xid, this.schema, this.hasKey);
      this.streams.set(xid, t);
    }
    return t;
  }

  private onStreamOp(xid: string, op: DecodedOp, schema: TableSchema | undefined): void {
    const t = this.stream(xid);
    const from = schema ?? this.schema;
    // A transaction streaming across a schema change goes on in the new schema.
    if (t.schema.schemaId < from.schemaId) t.evolve(from);
    t.apply(
      from.schemaId === t.schema.schemaId ? op : { ...op, values: rowMapper(from, t.schema)(op.values) },
    );
    const o = this.deps.options;
    if (t.active.rowCount >= o.memSliceMaxRows || t.active.byteSize >= o.memSliceMaxBytes) {
      if (t.active.liveCount === 0) {
        t.discardActive();
        return;
      }
      const fileId = this.nextFileId++;
      const spilled = t.spill(fileId, dataFileKey(this.tableRoot, fileId, randomUUID()));
      this.writesInFlight.add(spilled.key);
      spilled.extra = [];
      writeSliceToFile(
        this.flushJob(spilled.slice, spilled.rows, fileId, spilled.key, spilled.extra),
        this.deps.store,
        this.deps.pool,
      ).then(
        (result) => this.loop.post({ type: 'spill-done', txn: t, spilled, result }),
        (error) => this.loop.post({ type: 'spill-done', txn: t, spilled, error }),
      );
    }
  }

  private onSpillDone(e: Extract<TableEvent, { type: 'spill-done' }>): void {
    const { txn, spilled } = e;
    if (spilled.adopted) {
      // The transaction committed meanwhile: this is now an ordinary flush of a table slice.
      this.onFlushDone({
        type: 'flush-done',
        slice: spilled.slice,
        fileId: spilled.fileId,
        rows: spilled.rows,
        key: spilled.key,
        extra: spilled.extra,
        result: e.result,
        error: e.error,
      });
      return;
    }
    this.writesInFlight.delete(spilled.key);
    for (const k of spilled.extra ?? []) this.writesInFlight.delete(k);
    if (txn.state === 'aborted') {
      if (e.result) this.gc.addCandidates(e.result.files.map((f) => f.key));
      return;
    }
    if (e.error || !e.result) {
      spilled.failed = e.error ?? new Error('spill failed');
      this.log.warn('spilling a streamed transaction failed; it is written again at commit', {
        xid: txn.xid,
        error: e.error,
      });
    } else {
      spilled.result = e.result;
      spilled.slice.releaseColumns();
    }
  }

  private onStreamCommit(xid: string, lsn: Lsn, checkpoint?: [string, string], idem?: IdempotentWrite): void {
    const t = this.streams.get(xid);
    this.streams.delete(xid);
    if (lsn <= this.appliedLsn) return;
    if (t) {
      t.state = 'committed';
      if (idem) this.idempotency.add(idem.key, { lsn, count: t.opCount, hash: idem.hash, at: Date.now() });
      for (const key of t.deletedTableKeys) {
        hashKey(key);
        this.deleteKey(key, hashHi(), hashLo(), lsn);
      }
      for (const s of t.spilled) this.adoptSpilled(s, lsn);
      // The private active slice's rows join the table's active slice (in its schema).
      if (t.schema.schemaId !== this.schema.schemaId) t.evolve(this.schema);
      const live = t.active.liveRows();
      for (let i = 0; i < live.length; i++) {
        const row = live[i];
        const key = this.hasKey ? t.active.rowKeys[row] : undefined;
        this.applyOp({ op: 'insert', values: t.active.get(row), key }, lsn);
      }
    }
    this.advanceTo(lsn, checkpoint);
  }

  /** A spilled slice of a committed streaming transaction joins the table. */
  private adoptSpilled(s: SpilledSlice, lsn: Lsn): void {
    for (const d of s.slice.deletesAfterFreeze) d.lsn = lsn;
    if (s.result) {
      for (const f of s.result.files) this.installFile(s.slice, f, lsn);
      this.stateVersion++;
      return;
    }
    // Until its file is in, the slice's rows are read from a tail file like any frozen slice.
    s.slice.seal();
    if (s.failed) {
      // Its write failed: flush again, now as a table slice.
      s.slice.frozenAt = lsn;
      this.frozen.push(s.slice);
      this.startFlush(s.slice, s.rows, s.fileId);
      return;
    }
    // Still being written: it becomes a frozen slice; its spill-done counts as a flush-done.
    s.slice.frozenAt = lsn;
    s.adopted = true;
    this.frozen.push(s.slice);
    this.flushesInFlight++;
  }

  private onStreamAbort(xid: string): void {
    const t = this.streams.get(xid);
    this.streams.delete(xid);
    if (!t) return;
    t.state = 'aborted';
    this.gc.addCandidates(t.spilled.flatMap((s) => (s.result ? s.result.files.map((f) => f.key) : [])));
  }

  // ---- read snapshots ----

  private onRead(w: SnapshotWaiter): void {
    if (this.fenced) return w.reject(this.fenced);
    if (this.published && this.published.lsn >= w.minLsn) return w.resolve(this.publicSnapshot());
    this.waiters.push(w);
    this.serveWaiters();
  }

  private publicSnapshot(): PublishedSnapshot {
    const p = this.published!;
    return { lsn: p.lsn, key: p.key, seq: p.seq };
  }

  /** Resolves waiters a published snapshot covers; asks for a snapshot when one is needed now. */
  private serveWaiters(): void {
    if (this.waiters.length === 0) return;
    const p = this.published;
    let needed = false;
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i];
      if (p && p.lsn >= w.minLsn) {
        this.waiters.splice(i, 1);
        w.resolve(this.publicSnapshot());
      } else if (this.appliedLsn >= w.minLsn) needed = true;
    }
    if (needed) this.onSnapshot();
  }

  private onSnapshot(): void {
    if (this.fenced) return;
    if (this.snapshotInFlight) {
      this.snapshotWanted = true;
      return;
    }
    if (this.published && this.published.stateVersion === this.stateVersion) return;
    if (this.appliedLsn < this.holdSnapshotsBelow) {
      // Replay has not reached what readers saw before the restart; the old pointer serves them.
      if (Date.now() - this.holdSince < SNAPSHOT_HOLD_MAX_MS) return;
      this.log.warn('replay did not reach the read pointer of before the restart; publishing anyway', {
        appliedLsn: this.appliedLsn,
        pointerLsn: this.holdSnapshotsBelow,
      });
      this.holdSnapshotsBelow = 0n;
    }
    this.snapshotWanted = false;
    const capture = this.captureSnapshot();
    this.snapshotInFlight = true;
    const deps = this.deps;
    writeSnapshot(capture, {
      table: this.name,
      ephemeralRoot: this.ephemeralRoot,
      schema: this.schema,
      specs: this.specs,
      store: deps.store,
      pool: deps.pool,
    })
      .then(async (written) => {
        // Each pointer update also carries the latest Iceberg commit, so a commit whose own
        // pointer update failed reaches the catalog with the next snapshot.
        await deps.pointer.update((p) => ({
          ...p,
          snapshotKey: written.manifestKey,
          lsn: capture.lsn.toString(),
          // Never move the pointer's Iceberg fields back: a commit may have moved them first.
          ...(BigInt(p.committedLsn) >= this.committedLsn ? {} : this.committedPointerFields()),
        }));
        return written;
      })
      .then(
        (written) => this.loop.post({ type: 'snapshot-done', capture, written }),
        (error) => this.loop.post({ type: 'snapshot-done', capture, error }),
      );
  }

  /** What the next read snapshot holds; deletion vectors that changed are serialized now. */
  private captureSnapshot(): SnapshotCapture {
    const files: CapturedFile[] = [];
    const tails: CapturedTail[] = [];
    const blobs: CapturedBlob[] = [];
    for (const f of this.files.values()) {
      if (f.removedLsn !== undefined) continue;
      let dv: CapturedFile['dv'] = { kind: 'none' };
      if (!f.deletes.isEmpty()) {
        if (f.dvDirty || !f.dvRef) {
          blobs.push({ fileKey: f.key, blob: encodeDeletionVector(f.deletes), cardinality: f.deletes.size });
          dv = { kind: 'new', blob: blobs.length - 1 };
          f.dvDirty = false;
        } else dv = { kind: 'keep', ref: f.dvRef };
      }
      files.push({
        kind: 'data',
        key: f.key,
        rowCount: f.rowCount,
        sizeBytes: f.sizeBytes,
        dv,
        ...this.partitionOf(f),
      });
    }
    this.active.seal();
    for (const slice of [...this.frozen, this.active]) {
      for (const seg of slice.segments) {
        if (seg.key === undefined) {
          seg.key = `${this.ephemeralRoot}/tail/${randomUUID()}.parquet`;
          tails.push({ slice, segment: seg });
        }
        let dv: CapturedFile['dv'] = { kind: 'none' };
        if (seg.deletedCount === seg.end - seg.start) continue; // every row deleted: leave it out
        if (seg.deletedCount > 0) {
          if (seg.dvDirty || !seg.dvRef) {
            const bm = new RoaringBitmap64();
            for (const p of slice.segmentDeletes(seg)) bm.add(p);
            blobs.push({ fileKey: seg.key, blob: encodeDeletionVector(bm), cardinality: bm.size });
            dv = { kind: 'new', blob: blobs.length - 1 };
            seg.dvDirty = false;
          } else dv = { kind: 'keep', ref: seg.dvRef };
        }
        files.push({
          kind: 'tail',
          key: seg.key,
          rowCount: seg.end - seg.start,
          sizeBytes: seg.sizeBytes ?? 0,
          dv,
        });
      }
    }
    const seq = ++this.snapshotSeq;
    const capture: SnapshotCapture = {
      lsn: this.appliedLsn,
      seq,
      stateVersion: this.stateVersion,
      files,
      tails,
      blobs,
      // Named now, so the garbage collector knows them before they are published.
      manifestKey: `${this.ephemeralRoot}/snapshots/${this.appliedLsn.toString().padStart(20, '0')}-${seq}-${randomUUID().slice(0, 8)}.json`,
      dvKey: `${this.ephemeralRoot}/dv/${randomUUID()}.puffin`,
    };
    for (const f of files) this.inFlightKeys.add(f.key);
    this.inFlightKeys.add(capture.manifestKey);
    this.inFlightKeys.add(capture.dvKey);
    return capture;
  }

  private onSnapshotDone(
    capture: SnapshotCapture,
    written: SnapshotWritten | undefined,
    error: unknown,
  ): void {
    this.snapshotInFlight = false;
    const named = this.inFlightKeys;
    this.inFlightKeys = new Set();
    if (error || !written) {
      if (this.deps.pointer.fencedBy) return this.fence(this.deps.pointer.fencedBy);
      this.log.warn('publishing a read snapshot failed; will retry', { error });
      // What it wrote before failing is named by nothing now (its tails get new keys next time):
      // candidates for the collector, which keeps whatever is still in use.
      this.gc.addCandidates([...named]);
      this.markDvDirtyAgain(capture);
      setTimeout(() => this.loop.post({ type: 'snapshot' }), 200).unref();
      return;
    }
    // Remember where each deletion vector now lives, so the next snapshot can point to it.
    const byKey = new Map<string, (typeof written.manifest.files)[number]>();
    for (const f of written.manifest.files) byKey.set(f.path, f);
    for (const f of this.files.values()) {
      const m = byKey.get(f.key);
      if (m?.deletes && !f.dvDirty) f.dvRef = m.deletes;
    }
    for (const slice of [...this.frozen, this.active]) {
      for (const seg of slice.segments) {
        const m = seg.key ? byKey.get(seg.key) : undefined;
        if (m?.deletes && !seg.dvDirty) seg.dvRef = m.deletes;
        const size = written.tailSizes.get(seg);
        if (size !== undefined) seg.sizeBytes = size;
      }
    }
    if (this.pointerBehind && this.deps.pointer.pointer?.committedLsn === this.committedLsn.toString()) {
      this.pointerBehind = false;
      this.deps.onCommitted?.(this.committedLsn, { ...this.committedCheckpoints });
    }
    const keys = new Set(snapshotObjectKeys(written.manifest));
    keys.add(written.manifestKey);
    const previous = this.published;
    this.published = {
      lsn: capture.lsn,
      key: written.manifestKey,
      seq: capture.seq,
      stateVersion: capture.stateVersion,
      keys,
    };
    if (previous) this.gc.addCandidates([...previous.keys].filter((k) => !keys.has(k)));
    this.serveWaiters();
    if (this.snapshotWanted) this.onSnapshot();
  }

  private markDvDirtyAgain(capture: SnapshotCapture): void {
    const blobKeys = new Set(capture.blobs.map((b) => b.fileKey));
    for (const f of this.files.values()) if (blobKeys.has(f.key)) f.dvDirty = true;
    for (const slice of [...this.frozen, this.active]) {
      for (const seg of slice.segments) {
        if (seg.key && blobKeys.has(seg.key)) seg.dvDirty = true;
        // A tail that was never written gets a new key next time.
        if (capture.tails.some((t) => t.segment === seg)) seg.key = undefined;
      }
    }
  }

  // ---- Iceberg commits ----

  private onCommit(waiter?: CommitWaiter): void {
    if (this.fenced) {
      waiter?.reject(this.fenced);
      return;
    }
    if (waiter) this.commitWaiters.push(waiter);
    if (this.maintenance !== 'idle') {
      this.commitRequested = true;
      return;
    }
    this.commitRequested = false;
    if (
      !this.changedSinceCommit &&
      this.frozen.length === 0 &&
      this.pendingProperties.length === 0 &&
      this.pendingSchemas.length === 0 &&
      this.pendingPartitioning === undefined
    ) {
      // Nothing new since the last commit.
      this.resolveCommitWaiters();
      return;
    }
    this.maintenance = 'committing';
    this.commitFlushTarget = this.appliedLsn;
    this.freezeActive(this.appliedLsn);
    this.continueCommit();
  }

  /** Once every slice frozen at or before the commit LSN is flushed, builds and runs the commit. */
  private continueCommit(): void {
    if (this.maintenance !== 'committing' || this.commitFlushTarget === undefined) return;
    const target = this.commitFlushTarget;
    if (this.frozen.some((s) => s.frozenAt! <= target)) return;
    this.commitFlushTarget = undefined;
    const plan = buildCommit({
      lsn: target,
      files: [...this.files.values()],
      pendingDeletes: this.pendingDeletes,
      removedKeys: this.removedSinceCommit,
      checkpoints: this.checkpoints,
      index: this.index,
      ...(this.pendingProperties.length > 0
        ? { properties: this.pendingProperties.splice(0), committedLsn: this.committedLsn }
        : {}),
      ...this.schemasThrough(target),
      ...(this.pendingPartitioning
        ? { partitioning: this.pendingPartitioning, committedLsn: this.committedLsn }
        : {}),
    });
    if (!plan.propertiesOnly && this.idempotency.size > 0) {
      const w = this.idempotencyWritten;
      if (w.version === this.idempotency.version && w.complete && this.committedIdempotencyKey) {
        plan.idempotency = { key: this.committedIdempotencyKey };
      } else {
        const out = this.idempotency.serialize(plan.lsn);
        const key = `${this.tableRoot}/idempotency/${randomUUID()}.json`;
        plan.idempotency = {
          write: out.bytes,
          key,
          version: this.idempotency.version,
          complete: out.complete,
        };
        this.writesInFlight.add(key);
      }
    }
    runCommit(plan, {
      store: this.deps.store,
      iceberg: this.deps.iceberg,
      pointer: this.deps.pointer,
      tableRoot: this.tableRoot,
      nextFileId: this.nextFileId,
    }).then(
      (outcome) => this.loop.post({ type: 'commit-done', plan, outcome }),
      (error) => this.loop.post({ type: 'commit-done', plan, error }),
    );
  }

  private onCommitDone(plan: CommitPlan, outcome: CommitOutcome | undefined, error: unknown): void {
    this.maintenance = 'idle';
    const idem = plan.idempotency;
    if (idem?.write && idem.key) {
      this.writesInFlight.delete(idem.key);
      if (error || !outcome) this.gc.addCandidates([idem.key]);
      else {
        if (this.committedIdempotencyKey && this.committedIdempotencyKey !== idem.key)
          this.gc.addCandidates([this.committedIdempotencyKey]);
        this.committedIdempotencyKey = idem.key;
        this.idempotencyWritten = { version: idem.version ?? -1, complete: idem.complete ?? false };
      }
    }
    // Property changes of a failed commit go into the next one (before any that came since).
    if ((error || !outcome) && plan.properties) this.pendingProperties.unshift(...plan.properties);
    if (error || !outcome) {
      if (this.deps.pointer.fencedBy) return this.fence(this.deps.pointer.fencedBy);
      this.commitFailures++;
      if (this.commitFailures <= MAX_COMMIT_RETRIES) {
        const delay = Math.min(100 * 2 ** this.commitFailures, 10_000);
        this.log.warn('Iceberg commit failed; retrying', {
          error,
          lsn: plan.lsn,
          attempt: this.commitFailures,
          retryInMs: delay,
        });
        this.commitRequested = true;
        setTimeout(() => this.loop.post({ type: 'commit' }), delay).unref();
        return;
      }
      this.log.error('Iceberg commit failed', { error, lsn: plan.lsn, attempts: this.commitFailures });
      this.commitFailures = 0;
      // Their requesters are told it failed: not applied later behind their backs.
      this.pendingProperties = this.pendingProperties.filter((c) => !plan.properties?.includes(c));
      for (const w of this.commitWaiters.splice(0)) w.reject(error);
      this.afterMaintenance();
      return;
    }
    this.commitFailures = 0;
    for (const f of plan.included) f.inIceberg = true;
    for (const [fileId, committed] of plan.committedDeletes) {
      const f = this.files.get(fileId);
      if (f) f.committedDeletes = committed;
    }
    this.pendingDeletes.takeThrough(plan.lsn);
    for (const f of [...this.files.values()]) {
      if (f.removedLsn !== undefined && f.removedLsn <= plan.lsn) {
        this.files.delete(f.fileId);
        this.stateVersion++;
      }
    }
    this.removedSinceCommit = this.removedSinceCommit.filter((k) => !plan.removedKeys.includes(k));
    this.committedLsn = plan.lsn;
    if (plan.schemas) this.pendingSchemas = this.pendingSchemas.filter((p) => p.lsn > plan.lsn);
    if (plan.partitioning && plan.partitioning === this.pendingPartitioning)
      this.pendingPartitioning = undefined;
    this.committedIndexKeys = plan.runs.map((r) => r.persistedKey!).filter(Boolean);
    this.metadataLocation = outcome.metadataLocation;
    if (!plan.propertiesOnly) this.lastSnapshotId = outcome.snapshotId;
    this.changedSinceCommit =
      this.appliedLsn > plan.lsn ||
      this.removedSinceCommit.length > 0 ||
      [...this.files.values()].some((f) => !f.inIceberg);
    // What is left came after the commit was planned: its lag counts from about now.
    this.uncommittedSince = this.changedSinceCommit ? Date.now() : undefined;
    this.gc.addCandidates(outcome.obsoleteKeys);
    this.committedMetadataKey = outcome.metadataKey;
    this.committedCheckpoints = { ...plan.checkpoints };
    this.pointerBehind = !outcome.pointerUpdated;
    this.log.info('committed to Iceberg', {
      lsn: plan.lsn,
      snapshotId: outcome.snapshotId,
      addedFiles: plan.added.length,
      deleteFilesChanged: plan.committedDeletes.size,
    });
    if (outcome.pointerUpdated) this.deps.onCommitted?.(plan.lsn, plan.checkpoints);
    this.resolveCommitWaiters(plan.lsn);
    this.afterMaintenance();
    // Publish the flushed files (instead of tail files) without waiting for the interval.
    this.loop.post({ type: 'snapshot' });
  }

  /** The schema changes a commit through `lsn` adds to the Iceberg metadata. */
  private schemasThrough(lsn: Lsn): { schemas?: CommitPlan['schemas']; committedLsn?: Lsn } {
    const taken = this.pendingSchemas.filter((p) => p.lsn <= lsn);
    if (taken.length === 0) return {};
    return {
      schemas: {
        added: taken.map((p) => p.evolved.schema),
        lastColumnId: Math.max(...taken.map((p) => p.evolved.lastColumnId)),
      },
      committedLsn: this.committedLsn,
    };
  }

  private committedPointerFields(): {
    metadataKey?: string;
    metadataLocation?: string;
    committedLsn: string;
    checkpoints?: Record<string, string>;
  } {
    if (!this.committedMetadataKey) return { committedLsn: this.committedLsn.toString() };
    return {
      metadataKey: this.committedMetadataKey,
      metadataLocation: this.metadataLocation,
      committedLsn: this.committedLsn.toString(),
      checkpoints: { ...this.committedCheckpoints },
    };
  }

  private resolveCommitWaiters(lsn: Lsn = this.committedLsn): void {
    const info: CommitInfo = {
      lsn: maxLsn(lsn, this.committedLsn),
      metadataLocation: this.metadataLocation,
      snapshotId: this.lastSnapshotId,
    };
    const waiters = this.commitWaiters.splice(0);
    // Waiters that arrived after the commit's LSN was fixed need another round.
    if (this.appliedLsn > info.lsn && waiters.length > 0) {
      this.commitWaiters.push(...waiters);
      this.commitRequested = true;
      return;
    }
    for (const w of waiters) w.resolve(info);
  }

  private afterMaintenance(): void {
    // A waiting compaction goes first unless someone is waiting for a commit.
    const compact: TableEvent = { type: 'compact', busy: this.compactRequestBusy };
    if (this.compactRequested && this.commitWaiters.length === 0) this.loop.post(compact);
    else if (this.commitRequested || this.commitWaiters.length > 0) this.loop.post({ type: 'commit' });
    else if (this.compactRequested) this.loop.post(compact);
  }

  // ---- compaction ----

  private onCompact(busy: boolean): void {
    if (this.fenced) return;
    if (this.maintenance !== 'idle') {
      // Runs once the commit in progress is done (commits and compactions take turns); it may
      // wait for quiet only if every request for it may.
      this.compactRequestBusy = this.compactRequested ? this.compactRequestBusy && busy : busy;
      this.compactRequested = true;
      return;
    }
    this.compactRequested = false;
    const o = this.deps.options;
    const plan = planLayoutCompaction(
      [...this.files.values()].filter((f) => f.removedLsn === undefined),
      {
        layout: this.layout,
        smallFileAgeMs: o.compactSmallFileAgeMs,
        targetFileBytes: o.targetFileBytes,
        deletedRatio: o.compactDeletedRatio,
        minSmallFiles: o.compactMinSmallFiles,
        busy,
        onDeferred: () => this.compactionsDeferred++,
        nextFileId: () => this.nextFileId++,
        keyFor: (fileId) => dataFileKey(this.tableRoot, fileId, randomUUID()),
        startLsn: this.appliedLsn,
        // No bigger a pass than what the memory budget leaves (compactionMemory).
        maxMemoryBytes: this.deps.memoryHeadroom ? Math.max(0, this.deps.memoryHeadroom()) : undefined,
        rowBytes: this.rowBytes,
      },
    );
    if (!plan) return;
    this.maintenance = 'compacting';
    this.compactingBytes = compactionMemory(plan.inputs, this.rowBytes, hasLayout(plan.layout));
    for (const out of plan.outputs) this.writesInFlight.add(out.key);
    this.log.info('compaction started', { inputs: plan.inputs.length, outputs: plan.outputs.length });
    runCompaction(plan, {
      store: this.deps.store,
      pool: this.deps.pool,
      fields: this.schema.fields,
      keyColumns: this.codec.keyColumns,
      compression: o.dataCompression,
      allocate: () => {
        const fileId = this.nextFileId++;
        const key = dataFileKey(this.tableRoot, fileId, randomUUID());
        this.writesInFlight.add(key);
        return { fileId, key };
      },
      rowHashes:
        this.codec.keyColumns.length > 0
          ? this.index.rowHashes(new Map(plan.inputs.map((i) => [i.fileId, i.rowCount])))
          : undefined,
    }).then(
      (result) => this.loop.post({ type: 'compaction-done', plan, result }),
      (error) => this.loop.post({ type: 'compaction-done', plan, error }),
    );
  }

  private onCompactionDone(plan: CompactionPlan, result: CompactionResult | undefined, error: unknown): void {
    this.maintenance = 'idle';
    this.compactingBytes = 0;
    for (const out of plan.outputs) this.writesInFlight.delete(out.key);
    if (error || !result) {
      this.compactionsFailed++;
      this.log.warn('compaction failed', { error });
      this.gc.addCandidates(plan.outputs.map((o) => o.key));
      this.afterMaintenance();
      return;
    }
    // Outputs in, inputs out; deletes that happened during compaction move to the outputs.
    const outputs = result.outputs.map((o) => {
      const f = newDataFile({
        fileId: o.fileId,
        key: o.key,
        rowCount: o.rowCount,
        sizeBytes: o.sizeBytes,
        addedLsn: plan.startLsn,
        stats: o.stats,
        specId: o.specId,
        partition: o.partition,
        sortOrderId: o.sortOrderId,
      });
      this.files.set(f.fileId, f);
      if (o.run) this.index.add(o.run);
      return f;
    });
    const inputIds = new Set(plan.inputs.map((i) => i.fileId));
    // A TRUNCATE applied while the compaction ran marked its inputs: their rows leave at that
    // LSN, so the outputs that now hold them do too (else the truncated rows would come back).
    let removedLsn: Lsn | undefined;
    for (const input of plan.inputs) {
      const r = this.files.get(input.fileId)?.removedLsn;
      if (r !== undefined && (removedLsn === undefined || r < removedLsn)) removedLsn = r;
    }
    if (removedLsn !== undefined) for (const o of outputs) o.removedLsn = removedLsn;
    for (const input of plan.inputs) {
      const f = this.files.get(input.fileId)!;
      const mapping = result.mapping.get(input.fileId)!;
      for (const pos of f.deletes) {
        const at = mapping.place(pos);
        if (!at) continue; // deleted before compaction started: the row is not in the output
        outputs[at[0]].deletes.add(at[1]);
        outputs[at[0]].dvDirty = true;
      }
      this.files.delete(input.fileId);
      if (f.inIceberg) this.removedSinceCommit.push(f.key);
    }
    this.pendingDeletes.remap((fileId, pos) => {
      if (!inputIds.has(fileId)) return [fileId, pos];
      const at = result.mapping.get(fileId)!.place(pos);
      return at ? [outputs[at[0]].fileId, at[1]] : undefined;
    });
    // The inputs' index entries are never needed again (recovery from an older commit loads
    // that commit's persisted runs, which stay referenced).
    this.index.dropDeadRuns((fileId) => this.files.has(fileId));
    this.stateVersion++;
    this.markChanged();
    this.compactions++;
    // A partitioned table compacts one partition per pass: the next one goes right after, not
    // a timer interval later (the pass runs in a worker; this thread only installs its result).
    if (hasLayout(plan.layout) && !this.compactRequested) {
      this.compactRequested = true;
      this.compactRequestBusy = false;
    }
    this.log.info('compaction done', {
      inputs: plan.inputs.length,
      outputs: outputs.map((o) => ({ key: o.key, rows: o.rowCount, bytes: o.sizeBytes })),
    });
    this.maybeMergeIndex();
    this.afterMaintenance();
    this.loop.post({ type: 'snapshot' });
  }

  // ---- garbage collection ----

  /** Keys the writer may still publish or is publishing (never collected). */
  private keysInUse(): Set<string> {
    const keys = new Set<string>([...this.inFlightKeys, ...this.writesInFlight]);
    for (const k of this.published?.keys ?? []) keys.add(k);
    for (const f of this.files.values()) keys.add(f.key);
    for (const slice of [...this.frozen, this.active])
      for (const s of slice.segments) if (s.key) keys.add(s.key);
    for (const r of this.index.allRuns()) if (r.persistedKey) keys.add(r.persistedKey);
    for (const k of this.committedIndexKeys) keys.add(k);
    if (this.committedIdempotencyKey) keys.add(this.committedIdempotencyKey);
    for (const t of this.streams.values())
      for (const sp of t.spilled) {
        keys.add(sp.key);
        for (const k of sp.extra ?? []) keys.add(k);
      }
    return keys;
  }

  /** One garbage-collection pass (also run by the timer). */
  async collectGarbage(options: { orphans?: boolean } = {}): Promise<{ deleted: number }> {
    if (this.stopped) return { deleted: 0 };
    return this.gc.collect(options);
  }

  // ---- fencing ----

  private fence(e: Error): void {
    if (this.fenced) return;
    this.fenced = e;
    this.log.warn('another writer took this table; stopping', { error: e.message });
    this.stopTimers();
    this.rejectWaiting(e);
    this.deps.onFenced?.(e);
  }

  /** Stops the loop; every request still waiting on it (and any queued event's) fails with `err`. */
  private rejectWaiting(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
    for (const w of this.commitWaiters.splice(0)) w.reject(err);
    for (const c of this.deferredCommits.splice(0)) c.waiter?.reject(err);
    this.loop.stop();
  }
}

export type { TailSegment };
