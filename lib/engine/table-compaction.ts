/**
 * Compaction of the table's data files: timed passes (and `compactNow`) plan which files to
 * merge (compaction-groups.ts: small files of a partition, files with many deleted rows, files
 * of an earlier partition spec), the merge runs in a worker (compactor.ts), and
 * `compaction-done` swaps the outputs in. A pass takes its turn with the Iceberg commits and
 * is no bigger than the writer's memory budget leaves room for.
 */

import { dataFileKey } from '../store/object-keys.ts';
import { planLayoutCompaction } from './compaction-groups.ts';
import { type CompactionPlan, type CompactionResult, compactionMemory, runCompaction } from './compactor.ts';
import type { IndexMerges } from './index-merges.ts';
import { hasLayout } from './row-layout.ts';
import type { TableContext } from './table-context.ts';

export class TableCompaction {
  /** What a running pass is counted at against the memory budget (compactionMemory). */
  memoryBytes = 0;
  passes = 0;
  /** Timed passes that left small files for later because writes kept the loop busy. */
  deferred = 0;
  failed = 0;

  constructor(
    private readonly t: TableContext,
    private readonly merges: IndexMerges,
  ) {}

  /** A pass is asked for (`busy`: by the timer while writes keep the loop busy, so small files may wait). */
  request(busy: boolean): void {
    const t = this.t;
    const state = t.state;
    if (t.fenced) return;
    if (!t.sched.requestCompaction(busy)) return;
    const o = t.options;
    const plan = planLayoutCompaction(state.liveFiles(), {
      layout: state.layout,
      now: t.clock.now(),
      smallFileAgeMs: o.compactSmallFileAgeMs,
      targetFileBytes: o.targetFileBytes,
      deletedRatio: o.compactDeletedRatio,
      minSmallFiles: o.compactMinSmallFiles,
      busy,
      onDeferred: () => this.deferred++,
      nextFileId: () => state.newFileId(),
      objectKeyFor: (fileId) => dataFileKey(t.tableRoot, fileId, t.newId()),
      startLsn: state.appliedLsn,
      // No bigger a pass than what the memory budget leaves (compactionMemory).
      maxMemoryBytes: t.deps.memoryHeadroom ? Math.max(0, t.deps.memoryHeadroom()) : undefined,
      rowBytes: state.rowBytes,
    });
    if (!plan) return;
    t.sched.status = 'compacting';
    this.memoryBytes = compactionMemory(plan.inputs, state.rowBytes, hasLayout(plan.layout));
    for (const out of plan.outputs) t.writesInFlight.add(out.objectKey);
    t.log.info('compaction started', { inputs: plan.inputs.length, outputs: plan.outputs.length });
    runCompaction(plan, {
      store: t.deps.store,
      pool: t.deps.pool,
      fields: state.schema.fields,
      keyColumns: state.codec.keyColumns,
      compression: o.dataCompression,
      allocate: () => {
        const fileId = state.newFileId();
        const objectKey = dataFileKey(t.tableRoot, fileId, t.newId());
        t.writesInFlight.add(objectKey);
        return { fileId, objectKey };
      },
      rowHashes: state.hasKey
        ? state.index.rowHashes(new Map(plan.inputs.map((i) => [i.fileId, i.rowCount])))
        : undefined,
    }).then(
      (result) => t.post({ type: 'compaction-done', plan, result }),
      (error) => t.post({ type: 'compaction-done', plan, error }),
    );
  }

  /** `compaction-done`: outputs in, inputs out (or, failed, the inputs stay for the next pass). */
  done(plan: CompactionPlan, result: CompactionResult | undefined, error: unknown): void {
    const t = this.t;
    t.sched.status = 'idle';
    this.memoryBytes = 0;
    for (const out of plan.outputs) t.writesInFlight.delete(out.objectKey);
    if (error || !result) {
      this.failed++;
      t.log.warn('compaction failed', { error });
      t.gc.addCandidates(plan.outputs.map((o) => o.objectKey));
      t.afterMaintenance();
      return;
    }
    const outputs = t.state.installCompacted(plan, result);
    this.passes++;
    // A partitioned table compacts one partition per pass: the next one goes right after, not
    // a timer interval later (the pass runs in a worker; this thread only installs its result).
    if (hasLayout(plan.layout)) t.sched.continueCompaction();
    t.log.info('compaction done', {
      inputs: plan.inputs.length,
      outputs: outputs.map((o) => ({ key: o.objectKey, rows: o.rowCount, bytes: o.sizeBytes })),
    });
    this.merges.maybeStart();
    t.afterMaintenance();
    t.post({ type: 'snapshot' });
  }
}
