/**
 * TableLoop: the shell of one table's event loop. It owns the table's data (TableState), its
 * scheduling (MaintenanceScheduler) and its jobs, handles each event synchronously, one at a
 * time, and starts the jobs whose results come back as further events (see table-context.ts).
 * Timers come from the injected Clock. TableHandler is the table's API in front of it.
 */

import { type Lsn, ZERO_LSN } from '../lsn.ts';
import { rowMapper } from '../schema/evolve-values.ts';
import type { PartitionSpec } from '../schema/partition-spec.ts';
import type { EvolvedSchema } from '../schema/schema-change.ts';
import type { TableSchema } from '../schema/table-schema.ts';
import { ephemeralRootOf, tableRootOf } from '../store/object-keys.ts';
import { OpBatch, type Operations } from '../txn/op-batch.ts';
import { type Clock, systemClock, type Timer } from '../util/clock.ts';
import { type NewId, randomId } from '../util/ids.ts';
import type { Logger } from '../util/logger.ts';
import { EventLoop } from './event-loop.ts';
import { GarbageCollector } from './garbage-collector.ts';
import { IcebergCommits } from './iceberg-commits.ts';
import { IdempotencyKeys, type IdempotentWrite } from './idempotency.ts';
import { IndexMerges } from './index-merges.ts';
import { LoadGauge } from './load-gauge.ts';
import { MaintenanceScheduler } from './maintenance-scheduler.ts';
import type { EngineOptions } from './options.ts';
import { SchemaHistory } from './schema-history.ts';
import { SliceFlushes } from './slice-flushes.ts';
import { SnapshotPublisher } from './snapshot-publisher.ts';
import { StreamedTransactions } from './streamed-transactions.ts';
import { TableCompaction } from './table-compaction.ts';
import {
  isDataEvent,
  type RecoveredState,
  type TableContext,
  type TableEvent,
  type TableHandlerDeps,
} from './table-context.ts';
import { TableState } from './table-state.ts';

export class TableLoop implements TableContext {
  readonly name: string;
  readonly tableRoot: string;
  readonly ephemeralRoot: string;
  readonly options: EngineOptions;
  readonly clock: Clock;
  readonly newId: NewId;
  readonly log: Logger;
  readonly history: SchemaHistory;
  readonly specs: Map<number, PartitionSpec>;
  readonly schemas: Map<number, TableSchema>;
  readonly state: TableState;
  readonly sched = new MaintenanceScheduler();
  readonly gc: GarbageCollector;
  readonly writesInFlight = new Set<string>();
  readonly flushes: SliceFlushes;
  readonly streams: StreamedTransactions;
  readonly snapshots: SnapshotPublisher;
  readonly commits: IcebergCommits;
  readonly compaction: TableCompaction;
  readonly merges: IndexMerges;
  /** Idempotency keys applied within the retention window (the last commit persisted them). */
  readonly idempotency: IdempotencyKeys;
  /** Operations posted and not yet applied (they hold memory: counted in memoryBytes). */
  queuedOps = 0;
  stopped = false;
  fenced: Error | undefined;
  private readonly loop: EventLoop<TableEvent>;
  private readonly load = new LoadGauge();
  private readonly timers: Timer[] = [];

  constructor(
    readonly deps: TableHandlerDeps,
    recovered: RecoveredState,
  ) {
    this.name = deps.def.name;
    this.tableRoot = tableRootOf(deps.def);
    this.ephemeralRoot = ephemeralRootOf(deps.def);
    this.options = deps.options;
    this.clock = deps.clock ?? systemClock;
    this.newId = deps.newId ?? randomId;
    this.log = deps.logger.child({ table: this.name });
    // The schema of the last Iceberg commit: changes after it replay from the log.
    this.history = new SchemaHistory(deps.iceberg, recovered.lsn);
    this.specs = this.history.specs;
    this.schemas = this.history.schemas;
    this.state = new TableState({
      schema: deps.iceberg.schema(),
      layout: { spec: deps.iceberg.spec(), order: deps.iceberg.sortOrder() },
      files: recovered.files,
      runs: recovered.runs,
      nextFileId: recovered.nextFileId,
      lsn: recovered.lsn,
      checkpoints: recovered.checkpoints,
      options: deps.options,
      spillDir: deps.spillDir,
      clock: this.clock,
    });
    this.idempotency =
      recovered.idempotency ??
      new IdempotencyKeys({
        retentionMs: deps.options.idempotencyRetentionMs,
        maxKeys: deps.options.idempotencyMaxKeys,
      });
    this.gc = new GarbageCollector({
      table: this.name,
      roots: [this.tableRoot, this.ephemeralRoot],
      store: deps.store,
      catalog: deps.catalog,
      logger: this.log,
      orphanGraceMs: deps.options.orphanGraceMs,
      candidateGraceMs: deps.options.candidateGraceMs,
      clock: this.clock,
      inUse: () => this.keysInUse(),
      icebergKeys: () => deps.iceberg.referencedKeys(),
    });
    this.loop = new EventLoop<TableEvent>(
      (e) => this.handle(e),
      isDataEvent,
      (err, e) => this.log.error('event handler failed', { event: e.type, error: err }),
      // A request waiting on an event that will never run fails instead of hanging.
      (e) => {
        if ((e.type === 'read' || e.type === 'commit') && e.waiter)
          e.waiter.reject(this.fenced ?? new Error(`table "${this.name}" is closed`));
      },
      deps.clock ? () => this.clock.now() : undefined,
    );
    this.flushes = new SliceFlushes(this);
    this.streams = new StreamedTransactions(this, this.flushes);
    this.commits = new IcebergCommits(this, this.idempotency, recovered);
    this.snapshots = new SnapshotPublisher(this, this.commits, recovered.pointerLsn ?? ZERO_LSN);
    this.merges = new IndexMerges(this);
    this.compaction = new TableCompaction(this, this.merges);
  }

  post(e: TableEvent): void {
    this.loop.post(e);
  }

  /** Starts the periodic snapshot, commit, compaction and GC work. */
  start(): void {
    const o = this.deps.options;
    const every = (ms: number, fn: () => void): void => {
      if (ms > 0) this.timers.push(this.clock.every(ms, fn));
    };
    every(o.snapshotIntervalMs, () => this.post({ type: 'snapshot' }));
    every(o.commitIntervalMs, () => this.post({ type: 'commit' }));
    if (o.compaction)
      every(Math.max(1000, o.commitIntervalMs / 3), () =>
        this.post({ type: 'compact', busy: this.load.read() > o.compactYieldUtilization }),
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
      this.timers.push(this.clock.after(Math.min(o.orphanSweepIntervalMs, 60_000), sweep));
      every(o.orphanSweepIntervalMs, sweep);
    }
    this.post({ type: 'snapshot' });
  }

  /** Stops timers and the loop; requests still waiting fail with `err`. */
  stop(err: Error): void {
    this.stopTimers();
    this.stopped = true;
    this.rejectWaiting(err);
    this.state.index.clear();
  }

  private stopTimers(): void {
    for (const t of this.timers.splice(0)) t.cancel();
  }

  // =========================================================================================
  // The loop

  private handle(e: TableEvent): void {
    if (this.stopped) return;
    this.dispatch(e);
    // Slices the event froze are written now.
    if (this.state.toFlush.length > 0) this.flushes.startQueued();
  }

  private dispatch(e: TableEvent): void {
    const state = this.state;
    switch (e.type) {
      case 'apply':
        this.queuedOps -= e.ops.length;
        return this.onApply(e.lsn, this.inCurrentSchema(e.ops, e.schema), e.checkpoint, e.idem);
      case 'schema':
        this.onSchema(e.lsn, e.evolved, e.inline);
        e.resolve?.();
        return;
      case 'applied-wait':
        if (e.lsn <= state.appliedLsn) return e.resolve();
        return this.sched.waitApplied(e.lsn, e.resolve);
      case 'advance':
        if (e.lsn > state.appliedLsn) this.advanceTo(e.lsn, e.checkpoint);
        return;
      case 'truncate':
        if (e.lsn <= state.appliedLsn) return;
        state.truncate(e.lsn);
        return this.advanceTo(e.lsn, e.checkpoint);
      case 'stream-op':
        return this.streams.op(e.xid, e.op, e.schema);
      case 'stream-commit':
        if (e.lsn <= state.appliedLsn) return this.streams.forget(e.xid);
        this.streams.commit(e.xid, e.lsn, this.idempotency, e.idem);
        return this.advanceTo(e.lsn, e.checkpoint);
      case 'stream-abort':
        return this.streams.abort(e.xid);
      case 'flush-done':
        if (this.flushes.done(e)) this.afterFlush();
        return;
      case 'spill-done':
        if (this.streams.spillDone(e)) this.afterFlush();
        return;
      case 'snapshot':
        return this.snapshots.request();
      case 'snapshot-done':
        return this.snapshots.done(e.capture, e.written, e.error);
      case 'read':
        return this.snapshots.read(e.waiter);
      case 'commit':
        if (e.minLsn !== undefined && e.minLsn > state.appliedLsn)
          return this.sched.deferCommit(e.minLsn, e.waiter);
        return this.commits.request(e.waiter);
      case 'properties':
        this.commits.propertiesChanged(e.change);
        return this.commits.request(e.waiter);
      case 'partitioning':
        // Files flushed from now on use the new spec; it is in the metadata of the commit that
        // adds the first of them (the one asked for here).
        this.commits.partitioningChanged(e.spec, e.lastPartitionId);
        state.layout = { ...state.layout, spec: e.spec };
        return this.commits.request(e.waiter);
      case 'commit-done':
        return this.commits.done(e.plan, e.outcome, e.error);
      case 'compact':
        return this.compaction.request(e.busy === true);
      case 'compaction-done':
        return this.compaction.done(e.plan, e.result, e.error);
      case 'index-merged':
        return this.merges.done(e.done, e.error);
    }
  }

  private afterFlush(): void {
    this.merges.maybeStart();
    this.commits.continue();
  }

  private onApply(lsn: Lsn, ops: Operations, checkpoint?: [string, string], idem?: IdempotentWrite): void {
    if (lsn <= this.state.appliedLsn) return; // already applied before a restart: exactly once
    if (idem) {
      const now = this.clock.now();
      // A second write with the same key (a client's retry) is skipped; the first one counts.
      if (this.idempotency.get(idem.key, now)) return this.advanceTo(lsn, checkpoint);
      this.idempotency.add(idem.key, { lsn, count: ops.length, hash: idem.hash, at: now });
    }
    this.state.apply(ops, lsn);
    this.advanceTo(lsn, checkpoint);
  }

  /** Operations decoded in an older schema, in the current one (by field id). */
  private inCurrentSchema(ops: Operations, schema: TableSchema | undefined): Operations {
    const current = this.state.schema;
    const from = ops instanceof OpBatch ? ops.schema : (schema ?? current);
    if (from.schemaId === current.schemaId) return ops;
    const map = rowMapper(from, current);
    const list = ops instanceof OpBatch ? ops.ops() : ops;
    return list.map((o) => ({ ...o, values: map(o.values) }));
  }

  /**
   * A schema change: rows in memory keep their schema (the active slice is frozen and flushes
   * in it), rows from now on are in the new one, and the next Iceberg commit adds it.
   */
  private onSchema(lsn: Lsn, evolved: EvolvedSchema, inline: boolean): void {
    const state = this.state;
    if (lsn <= state.appliedLsn) return; // replayed: Iceberg has it already
    if (evolved.schema.schemaId > state.schema.schemaId) {
      state.changeSchema(evolved.schema);
      this.commits.schemaChanged(lsn, evolved);
      this.log.info('schema changed', { schemaId: evolved.schema.schemaId, lsn });
      // Engines see the new schema (the Iceberg metadata, Glue) soon, not at the next interval (a
      // second later: changes made together, or replayed together, go into one commit).
      this.clock.after(this.deps.options.schemaCommitDelayMs, () => this.post({ type: 'commit' }));
    }
    if (!inline) this.advanceTo(lsn);
  }

  /** The table applied through `lsn`: waiting reads, callers and flush requests it serves go on. */
  private advanceTo(lsn: Lsn, checkpoint?: [string, string]): void {
    this.state.advanceTo(lsn, checkpoint);
    this.snapshots.applied(lsn);
    const { resolved, commits } = this.sched.appliedThrough(lsn);
    for (const r of resolved) r();
    for (const waiter of commits) this.post({ type: 'commit', waiter });
  }

  /**
   * After a commit or compaction: what waited for it, and a merge of index runs (a commit's own
   * flush adds a run while no merge may start; without this, runs of commit-driven flushes
   * only merged at the next flush outside a commit).
   */
  afterMaintenance(): void {
    this.merges.maybeStart();
    const next = this.sched.next();
    if (next?.job === 'compact') this.post({ type: 'compact', busy: next.busy });
    else if (next?.job === 'commit') this.post({ type: 'commit' });
  }

  // ---- garbage collection ----

  /** Keys the writer may still publish or is publishing (never collected). */
  private keysInUse(): Set<string> {
    const keys = new Set<string>(this.writesInFlight);
    this.snapshots.keys(keys);
    for (const f of this.state.files.values()) keys.add(f.objectKey);
    for (const slice of this.state.slices()) for (const s of slice.segments) if (s.key) keys.add(s.key);
    for (const r of this.state.index.allRuns()) if (r.persistedKey) keys.add(r.persistedKey);
    this.commits.keys(keys);
    this.streams.keys(keys);
    return keys;
  }

  /** One garbage-collection pass (also run by the timer). */
  async collectGarbage(options: { orphans?: boolean } = {}): Promise<{ deleted: number }> {
    if (this.stopped) return { deleted: 0 };
    return this.gc.collect(options);
  }

  // ---- fencing ----

  fence(e: Error): void {
    if (this.fenced) return;
    this.fenced = e;
    this.log.warn('another writer took this table; stopping', { error: e.message });
    this.stopTimers();
    this.rejectWaiting(e);
    this.deps.onFenced?.(e);
  }

  /** Stops the loop; every request still waiting on it (and any queued event's) fails with `err`. */
  private rejectWaiting(err: Error): void {
    for (const w of this.sched.takeAllWaiters()) w.reject(err);
    this.loop.stop();
  }
}
