/**
 * Compaction of a partitioned or sorted table: files merge only with files of their own
 * partition (and spec); files written under an earlier partition spec are rewritten into the
 * current one first. A partition's small files merge once there are enough of them, or once
 * they are old enough (`smallFileAgeMs`), so a partition that gets few rows does not keep many
 * tiny files for ever. One group per pass: the one with the most files to merge.
 */
import { tupleKey } from '../schema/partition-spec.ts';
import { type CompactionPlan, type PlanOptions, planCompaction } from './compactor.ts';
import type { DataFile } from './data-file.ts';
import { hasLayout, type RowLayout } from './row-layout.ts';

export interface LayoutPlanOptions extends PlanOptions {
  layout?: RowLayout;
  /** Small files of one partition merge, two or more, once the oldest is this old. */
  smallFileAgeMs: number;
  now?: number;
}

export function planLayoutCompaction(files: DataFile[], o: LayoutPlanOptions): CompactionPlan | undefined {
  const layout = o.layout;
  if (!layout) return planCompaction(files, o);
  const withLayout = (plan: CompactionPlan | undefined): CompactionPlan | undefined =>
    plan ? { ...plan, layout } : undefined;
  const misfiled = files.filter((f) => f.specId !== layout.spec.specId);
  if (!hasLayout(layout)) {
    // Unpartitioned and unsorted: files of an earlier, partitioned spec are rewritten into it.
    if (misfiled.length > 0) return withLayout(planCompaction(misfiled, { ...o, rewrite: true }));
    return withLayout(planCompaction(files, o));
  }
  const laid = { ...o, deferOutputs: true, laidOut: true };
  if (misfiled.length > 0) return withLayout(planCompaction(misfiled, { ...laid, rewrite: true }));
  const groups = new Map<string, DataFile[]>();
  for (const f of files) {
    const key = tupleKey(f.partition);
    const g = groups.get(key);
    if (g) g.push(f);
    else groups.set(key, [f]);
  }
  const now = o.now ?? Date.now();
  let best: CompactionPlan | undefined;
  for (const g of groups.values()) {
    const small = g.filter((f) => f.sizeBytes < o.targetFileBytes / 2);
    const aged = small.length >= 2 && Math.min(...small.map((f) => f.addedAt)) <= now - o.smallFileAgeMs;
    const plan = planCompaction(g, {
      ...laid,
      minSmallFiles: aged ? 2 : o.minSmallFiles,
      // One deferral count per pass, not per partition.
      onDeferred: undefined,
    });
    if (plan && (!best || plan.inputs.length > best.inputs.length)) best = plan;
  }
  if (!best && o.busy && files.length >= o.minSmallFiles) o.onDeferred?.();
  return withLayout(best);
}
