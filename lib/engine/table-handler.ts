/**
 * TableHandler: one table as the writer serves it — its API. Methods post events to the
 * table's loop (table-loop.ts), which handles them one at a time, synchronously; promises
 * settle when the loop has done the work. The loop's parts:
 *
 *   transaction → TableState.apply → a frozen slice → SliceFlushes (`flush-done`)
 *   → SnapshotPublisher every second or on demand (`snapshot-done`)
 *   → IcebergCommits every 30 s or on flush (`commit-done`)
 *   → TableCompaction (`compaction-done`), IndexMerges (`index-merged`), garbage collection;
 *   what runs when is MaintenanceScheduler's to decide.
 */

import type { PropertyChange } from '../iceberg/iceberg-table.ts';
import { type Lsn, ZERO_LSN } from '../lsn.ts';
import type { PartitionSpec } from '../schema/partition-spec.ts';
import type { EvolvedSchema } from '../schema/schema-change.ts';
import type { TableDefinition, TableSchema } from '../schema/table-schema.ts';
import type { Operations } from '../txn/op-batch.ts';
import type { DecodedOp } from '../txn/transaction.ts';
import type { MirroredTable } from './catalog-mirror.ts';
import { liveRowCount } from './data-file.ts';
import type { IdempotencyRecord, IdempotentWrite } from './idempotency.ts';
import type { CommitInfo, PublishedSnapshot } from './maintenance-scheduler.ts';
import type { TailSegment } from './mem-slice.ts';
import type { RowLayout } from './row-layout.ts';
import type { RecoveredState, TableHandlerDeps } from './table-context.ts';
import { TableLoop } from './table-loop.ts';
import type { TableSink } from './table-sink.ts';
import { type TableStatus, tableStatus } from './table-status.ts';

export type { CommitInfo, PublishedSnapshot } from './maintenance-scheduler.ts';
export type { RecoveredState, TableHandlerDeps } from './table-context.ts';
export { type TableStatus, writerStatusJson } from './table-status.ts';

export class TableHandler implements TableSink {
  readonly name: string;
  readonly tableRoot: string;
  readonly ephemeralRoot: string;
  readonly def: TableDefinition;
  private readonly t: TableLoop;

  constructor(
    private readonly deps: TableHandlerDeps,
    recovered: RecoveredState,
  ) {
    this.def = deps.def;
    this.t = new TableLoop(deps, recovered);
    this.name = this.t.name;
    this.tableRoot = this.t.tableRoot;
    this.ephemeralRoot = this.t.ephemeralRoot;
  }

  /**
   * Lets snapshots below the pointer found at open be published (a damaged log: its intact
   * prefix is all there is, and reads must show what this writer holds).
   */
  releaseSnapshotHold(): void {
    this.t.snapshots.releaseHold();
  }

  /** Starts the periodic snapshot, commit, compaction and GC work. */
  start(): void {
    this.t.start();
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
    this.t.queuedOps += ops.length;
    this.t.post({ type: 'apply', lsn, ops, checkpoint, idem, schema });
  }

  /**
   * Changes the table's schema at `lsn`, ordered with the transactions (resolves once applied).
   * `inline`: the change belongs to the transaction logged at `lsn` (a record that added
   * columns), which is applied right after it at the same LSN.
   */
  changeSchema(lsn: Lsn, evolved: EvolvedSchema, inline = false): Promise<void> {
    this.t.history.schemaPosted(lsn, evolved);
    return new Promise((resolve) => this.t.post({ type: 'schema', lsn, evolved, inline, resolve }));
  }

  /** Resolves once every transaction through `lsn` is applied. */
  appliedThrough(lsn: Lsn): Promise<void> {
    if (lsn <= this.t.state.appliedLsn) return Promise.resolve();
    return new Promise((resolve) => this.t.post({ type: 'applied-wait', lsn, resolve }));
  }

  /** The schema a record logged now is in (every change posted so far applied). */
  get latestSchema(): TableSchema {
    return this.t.history.latest;
  }

  /** The table's `last-column-id` as of the latest change posted. */
  get latestLastColumnId(): number {
    return this.t.history.lastColumnId;
  }

  /** Every schema the table had, oldest first (the newest posted last). */
  schemaHistory(): TableSchema[] {
    return this.t.history.history();
  }

  /** The LSN at which a schema became the table's (see SchemaHistory.changedAt). */
  schemaChangedAt(id: number): Lsn {
    return this.t.history.changedAt(id);
  }

  /** A schema the table had (for records written in it), or undefined. */
  schemaById(id: number): TableSchema | undefined {
    return this.t.history.schemas.get(id);
  }

  /**
   * What the write with this Idempotency-Key did (its LSN, count and body hash), once the table
   * has applied everything through `afterLsn`; undefined when no write with the key was applied.
   */
  async idempotencyRecord(key: string, afterLsn: Lsn = ZERO_LSN): Promise<IdempotencyRecord | undefined> {
    await this.appliedThrough(afterLsn);
    return this.t.idempotency.get(key, this.t.clock.now());
  }

  /** Records that the source moved to `lsn` without a change to this table (e.g. another table's transaction). */
  advance(lsn: Lsn, checkpoint?: [string, string]): void {
    this.t.post({ type: 'advance', lsn, checkpoint });
  }

  /** Empties the table at `lsn` (e.g. a Postgres TRUNCATE). */
  truncate(lsn: Lsn, checkpoint?: [string, string]): void {
    this.t.post({ type: 'truncate', lsn, checkpoint });
  }

  /** One operation of a streamed transaction; `schema`: the one it was decoded in, if not the current. */
  streamOp(xid: string, op: DecodedOp, schema?: TableSchema): void {
    this.t.post({ type: 'stream-op', xid, op, schema });
  }

  /**
   * Commits a streamed transaction at `lsn` (nothing but the LSN when it is not open here: a
   * replay after a restart). With `idem`, the commit is kept as an idempotency record under its
   * key (what an import checks after a restart: did its commit reach Iceberg).
   */
  streamCommit(xid: string, lsn: Lsn, checkpoint?: [string, string], idem?: IdempotentWrite): void {
    this.t.post({ type: 'stream-commit', xid, lsn, checkpoint, idem });
  }

  streamAbort(xid: string): void {
    this.t.post({ type: 'stream-abort', xid });
  }

  /** Resolves with a published read snapshot covering at least `minLsn` (publishing one if needed). */
  snapshotAtLeast(minLsn: Lsn): Promise<PublishedSnapshot> {
    if (this.t.fenced) return Promise.reject(this.t.fenced);
    return new Promise((resolve, reject) =>
      this.t.post({ type: 'read', waiter: { minLsn, resolve, reject } }),
    );
  }

  /**
   * Makes everything posted so far (and, with `minLsn`, everything up to that LSN once it has
   * arrived) durable as Parquet and commits it to Iceberg.
   */
  commit(minLsn?: Lsn): Promise<CommitInfo> {
    if (this.t.fenced) return Promise.reject(this.t.fenced);
    return new Promise((resolve, reject) =>
      this.t.post({ type: 'commit', waiter: { resolve, reject }, minLsn }),
    );
  }

  /**
   * Sets and removes Iceberg table properties (REST catalog commits): taken into the next
   * commit, which happens now; resolves once it is committed.
   */
  updateProperties(change: PropertyChange): Promise<CommitInfo> {
    if (this.t.fenced) return Promise.reject(this.t.fenced);
    return new Promise((resolve, reject) =>
      this.t.post({ type: 'properties', change, waiter: { resolve, reject } }),
    );
  }

  /**
   * Makes `spec` the table's partition spec (partition evolution): files written from now on
   * use it, files already written keep theirs, compaction rewrites them into it. Resolves once
   * the spec is committed to the Iceberg metadata.
   */
  setPartitioning(spec: PartitionSpec, lastPartitionId: number): Promise<CommitInfo> {
    if (this.t.fenced) return Promise.reject(this.t.fenced);
    this.t.history.specPosted(spec, lastPartitionId);
    return new Promise((resolve, reject) =>
      this.t.post({ type: 'partitioning', spec, lastPartitionId, waiter: { resolve, reject } }),
    );
  }

  /** Every partition spec of the table, by id (those set and not yet committed too). */
  partitionSpecs(): Map<number, PartitionSpec> {
    return new Map(this.t.history.specs);
  }

  /** The highest partition field id the table used (Iceberg's `last-partition-id`). */
  get lastPartitionId(): number {
    return this.t.history.lastPartitionId;
  }

  /** The table's partition spec and sort order (as set; committed once setPartitioning resolves). */
  get fileLayout(): RowLayout {
    return { spec: this.t.state.layout.spec, order: this.t.state.layout.order };
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
    this.t.post({ type: 'compact' });
  }

  get lsn(): Lsn {
    return this.t.state.appliedLsn;
  }

  /**
   * What this table holds in memory for the writer's budget: rows in slices (buffered and
   * frozen), index runs in memory, and a compaction in flight (its inputs and outputs decoded:
   * about two in-memory rows per input row).
   */
  memoryBytes(): number {
    // Transactions waiting for the loop hold about a row's bytes per operation.
    return (
      this.t.state.memoryBytes() + this.t.queuedOps * this.t.state.rowBytes + this.t.compaction.memoryBytes
    );
  }

  /** The LSN of the newest published read snapshot (undefined before the first). */
  get publishedLsn(): Lsn | undefined {
    return this.t.snapshots.lsn;
  }

  get isFenced(): boolean {
    return this.t.fenced !== undefined;
  }

  status(): TableStatus {
    return tableStatus(this.t.state, {
      snapshotLsn: this.t.snapshots.lsn,
      committedLsn: this.t.commits.committedLsn,
      metadataLocation: this.t.commits.metadataLocation,
      flushing: this.t.flushes.inFlight,
      compaction: this.t.compaction,
      now: this.t.clock.now(),
    });
  }

  /** Data files now (for tests and describe). */
  dataFiles(): { key: string; rowCount: number; liveRows: number; sizeBytes: number; inIceberg: boolean }[] {
    return [...this.t.state.files.values()].map((f) => ({
      key: f.objectKey,
      rowCount: f.rowCount,
      liveRows: liveRowCount(f),
      sizeBytes: f.sizeBytes,
      inIceberg: f.inIceberg,
    }));
  }

  /** Stops timers and the loop. With `flush`, first commits everything applied. */
  async close(options: { flush?: boolean } = {}): Promise<void> {
    if (this.t.stopped) return;
    if (options.flush && !this.t.fenced) {
      try {
        await this.commit();
      } catch (e) {
        this.t.log.warn('final flush failed', { error: e });
      }
    }
    this.t.stop(new Error(`table "${this.name}" is closed`));
  }

  /** One garbage-collection pass (also run by the timer). */
  collectGarbage(options: { orphans?: boolean } = {}): Promise<{ deleted: number }> {
    return this.t.collectGarbage(options);
  }
}

export type { TailSegment };
