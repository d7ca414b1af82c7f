/**
 * Iceberg commits of the table: every commit interval, at `POST /flush` (a flush request), and
 * soon after a schema, property or partition change. A commit freezes the active slice, waits
 * until every slice frozen through its LSN is flushed, then writes the Iceberg snapshot and
 * moves the catalog pointer (iceberg-committer.ts) off the loop; `commit-done` records it.
 * Commits and compactions take turns (MaintenanceScheduler). A failed commit is tried again
 * (RETRY.commit); once the attempts are used up, the flush requests waiting for it fail.
 */

import type { PropertyChange } from '../iceberg/iceberg-table.ts';
import { type Lsn, maxLsn } from '../lsn.ts';
import type { PartitionSpec } from '../schema/partition-spec.ts';
import type { EvolvedSchema } from '../schema/schema-change.ts';
import { idempotencyKey } from '../store/object-keys.ts';
import { buildCommit, type CommitOutcome, type CommitPlan, runCommit } from './iceberg-committer.ts';
import type { IdempotencyKeys } from './idempotency.ts';
import type { CommitInfo, CommitWaiter } from './maintenance-scheduler.ts';
import type { RecoveredState, TableContext } from './table-context.ts';
import { frozenAt } from './table-state.ts';

export class IcebergCommits {
  committedLsn: Lsn;
  metadataLocation: string | undefined;
  private lastSnapshotId: number | undefined;
  /** Index runs the last commit lists (recovery reads them). */
  private committedIndexKeys: string[];
  /**
   * Index runs earlier commits listed and the last one does not, kept while the catalog
   * pointer still names an earlier commit (a restart then recovers from it and reads them).
   */
  private readonly indexKeysBehindPointer = new Set<string>();
  private committedMetadataKey: string | undefined;
  private committedCheckpoints: Record<string, string>;
  /** The last commit is not in the catalog pointer yet (a snapshot's pointer update carries it). */
  private pointerBehind = false;
  /** Schema changes applied and not yet committed (with their LSNs). */
  private pendingSchemas: { lsn: Lsn; evolved: EvolvedSchema }[] = [];
  /** Property changes waiting for the next commit (REST catalog). */
  private pendingProperties: PropertyChange[] = [];
  /** A partition spec set and not yet committed. */
  private pendingPartitioning: { spec: PartitionSpec; lastPartitionId: number } | undefined;
  /** The object holding the idempotency keys the last commit kept, and which version of them it holds. */
  private committedIdempotencyKey: string | undefined;
  private idempotencyWritten: { version: number; complete: boolean };

  constructor(
    private readonly t: TableContext,
    private readonly idempotency: IdempotencyKeys,
    recovered: RecoveredState,
  ) {
    const ice = t.deps.iceberg;
    this.committedLsn = recovered.lsn;
    this.metadataLocation = ice.metadataLocation();
    this.committedMetadataKey = ice.metadataKey;
    this.lastSnapshotId = ice.currentSnapshot()?.['snapshot-id'];
    this.committedCheckpoints = { ...recovered.checkpoints };
    this.committedIndexKeys = recovered.runs.flatMap((r) => (r.persistedKey ? [r.persistedKey] : []));
    this.committedIdempotencyKey = recovered.idempotencyKey;
    this.idempotencyWritten = { version: idempotency.version, complete: true };
  }

  schemaChanged(lsn: Lsn, evolved: EvolvedSchema): void {
    this.pendingSchemas.push({ lsn, evolved });
  }

  propertiesChanged(change: PropertyChange): void {
    this.pendingProperties.push(change);
  }

  partitioningChanged(spec: PartitionSpec, lastPartitionId: number): void {
    this.pendingPartitioning = { spec, lastPartitionId };
  }

  /** A commit is asked for (`waiter`: a flush request): it starts now, waits its turn, or finds nothing new. */
  request(waiter?: CommitWaiter): void {
    const t = this.t;
    const state = t.state;
    if (t.fenced) {
      waiter?.reject(t.fenced);
      return;
    }
    if (!t.sched.requestCommit(waiter)) return;
    if (
      !state.changedSinceCommit &&
      state.frozen.length === 0 &&
      this.pendingProperties.length === 0 &&
      this.pendingSchemas.length === 0 &&
      this.pendingPartitioning === undefined
    ) {
      this.resolveWaiters(); // nothing new since the last commit
      return;
    }
    t.sched.status = 'committing';
    t.sched.commitFlushTarget = state.appliedLsn;
    state.freezeActive(state.appliedLsn);
    this.continue();
  }

  /** Once every slice frozen at or before the commit LSN is flushed, builds and runs the commit. */
  continue(): void {
    const t = this.t;
    const state = t.state;
    const target = t.sched.commitFlushTarget;
    if (t.sched.status !== 'committing' || target === undefined) return;
    if (state.frozen.some((s) => frozenAt(s) <= target)) return;
    t.sched.commitFlushTarget = undefined;
    const plan = buildCommit({
      lsn: target,
      files: [...state.files.values()],
      pendingDeletes: state.pendingDeletes,
      removedKeys: state.removedSinceCommit,
      checkpoints: state.checkpoints,
      index: state.index,
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
        const out = this.idempotency.serialize(plan.lsn, t.clock.now());
        const key = idempotencyKey(t.tableRoot, t.newId());
        plan.idempotency = {
          write: out.bytes,
          key,
          version: this.idempotency.version,
          complete: out.complete,
        };
        t.writesInFlight.add(key);
      }
    }
    runCommit(plan, {
      store: t.deps.store,
      iceberg: t.deps.iceberg,
      pointer: t.deps.pointer,
      tableRoot: t.tableRoot,
      nextFileId: state.nextFileId,
      clock: t.clock,
      newId: t.newId,
    }).then(
      (outcome) => t.post({ type: 'commit-done', plan, outcome }),
      (error) => t.post({ type: 'commit-done', plan, error }),
    );
  }

  /** `commit-done`. */
  done(plan: CommitPlan, outcome: CommitOutcome | undefined, error: unknown): void {
    const t = this.t;
    t.sched.status = 'idle';
    const idem = plan.idempotency;
    if (idem?.write && idem.key) {
      t.writesInFlight.delete(idem.key);
      if (error || !outcome) t.gc.addCandidates([idem.key]);
      else {
        if (this.committedIdempotencyKey && this.committedIdempotencyKey !== idem.key)
          t.gc.addCandidates([this.committedIdempotencyKey]);
        this.committedIdempotencyKey = idem.key;
        this.idempotencyWritten = { version: idem.version ?? -1, complete: idem.complete ?? false };
      }
    }
    if (error || !outcome) return this.failed(plan, error);
    t.sched.commitRetry.succeeded();
    t.state.committed(plan);
    this.committedLsn = plan.lsn;
    if (plan.schemas) this.pendingSchemas = this.pendingSchemas.filter((p) => p.lsn > plan.lsn);
    if (plan.partitioning && plan.partitioning === this.pendingPartitioning)
      this.pendingPartitioning = undefined;
    const previousIndexKeys = this.committedIndexKeys;
    this.committedIndexKeys = plan.runs.flatMap((r) => (r.persistedKey ? [r.persistedKey] : []));
    for (const k of previousIndexKeys) this.indexKeysBehindPointer.add(k);
    if (outcome.pointerUpdated) this.releaseIndexKeys();
    this.metadataLocation = outcome.metadataLocation;
    if (!plan.propertiesOnly) this.lastSnapshotId = outcome.snapshotId;
    t.gc.addCandidates(outcome.obsoleteKeys);
    this.committedMetadataKey = outcome.metadataKey;
    this.committedCheckpoints = { ...plan.checkpoints };
    this.pointerBehind = !outcome.pointerUpdated;
    t.log.info('committed to Iceberg', {
      lsn: plan.lsn,
      snapshotId: outcome.snapshotId,
      addedFiles: plan.added.length,
      deleteFilesChanged: plan.committedDeletes.size,
    });
    if (outcome.pointerUpdated) t.deps.onCommitted?.(plan.lsn, plan.checkpoints);
    this.resolveWaiters(plan.lsn);
    t.afterMaintenance();
    // Publish the flushed files (instead of tail files) without waiting for the interval.
    t.post({ type: 'snapshot' });
  }

  private failed(plan: CommitPlan, error: unknown): void {
    const t = this.t;
    // Property changes of a failed commit go into the next one (before any that came since).
    if (plan.properties) this.pendingProperties.unshift(...plan.properties);
    if (t.deps.pointer.fencedBy) return t.fence(t.deps.pointer.fencedBy);
    const attempt = t.sched.commitRetry.failures + 1;
    const delay = t.sched.commitRetry.failed();
    if (delay !== undefined) {
      t.log.warn('Iceberg commit failed; retrying', { error, lsn: plan.lsn, attempt, retryInMs: delay });
      t.sched.commitRequested = true;
      t.clock.after(delay, () => t.post({ type: 'commit' }));
      return;
    }
    t.log.error('Iceberg commit failed', { error, lsn: plan.lsn, attempts: attempt });
    // Their requesters are told it failed: not applied later behind their backs.
    this.pendingProperties = this.pendingProperties.filter((c) => !plan.properties?.includes(c));
    for (const w of t.sched.commitWaiters.splice(0)) w.reject(error);
    t.afterMaintenance();
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

  /** The last commit as the catalog pointer holds it. */
  pointerFields(): {
    metadataKey?: string;
    metadataLocation?: string;
    committedLsn: Lsn;
    checkpoints?: Record<string, string>;
  } {
    if (!this.committedMetadataKey) return { committedLsn: this.committedLsn };
    return {
      metadataKey: this.committedMetadataKey,
      metadataLocation: this.metadataLocation,
      committedLsn: this.committedLsn,
      checkpoints: { ...this.committedCheckpoints },
    };
  }

  /** A snapshot's pointer update carried the last commit to the catalog (if it was behind). */
  pointerCaughtUp(): void {
    const t = this.t;
    if (this.pointerBehind && t.deps.pointer.pointer?.committedLsn === this.committedLsn) {
      this.pointerBehind = false;
      this.releaseIndexKeys();
      t.deps.onCommitted?.(this.committedLsn, { ...this.committedCheckpoints });
    }
  }

  private resolveWaiters(lsn: Lsn = this.committedLsn): void {
    const info: CommitInfo = {
      lsn: maxLsn(lsn, this.committedLsn),
      metadataLocation: this.metadataLocation,
      snapshotId: this.lastSnapshotId,
    };
    // Waiters that arrived after the commit's LSN was fixed need another round.
    for (const w of this.t.sched.takeCommitWaiters(info.lsn, this.t.state.appliedLsn)) w.resolve(info);
  }

  /**
   * The pointer names the last commit: index runs only earlier commits listed are garbage (a
   * merge or a compaction replaced them; nothing but recovery reads a run). Without this they
   * stayed until the orphan sweep, an hour: most of the objects a steady upsert load kept.
   */
  private releaseIndexKeys(): void {
    const current = new Set(this.committedIndexKeys);
    this.t.gc.addCandidates([...this.indexKeysBehindPointer].filter((k) => !current.has(k)));
    this.indexKeysBehindPointer.clear();
  }

  /** Keys the last commit names, and those a lagging pointer's commit may (kept from the collector). */
  keys(into: Set<string>): void {
    for (const k of this.committedIndexKeys) into.add(k);
    for (const k of this.indexKeysBehindPointer) into.add(k);
    if (this.committedIdempotencyKey) into.add(this.committedIdempotencyKey);
  }
}
