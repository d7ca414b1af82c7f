/**
 * Compaction planning for partitioned tables (lib/engine/compaction-groups.ts): files merge only
 * within their partition; a partition's few small files wait until they are old enough, then
 * merge; files of an earlier spec are rewritten into the current one before anything else.
 */

import { describe, expect, it } from 'vitest';
import { planLayoutCompaction } from '../lib/engine/compaction-groups.ts';
import { type DataFile, newDataFile } from '../lib/engine/data-file.ts';
import type { RowLayout } from '../lib/engine/row-layout.ts';
import { asLsn } from '../lib/lsn.ts';
import { UNSORTED } from '../lib/schema/sort-order.ts';
import { asFileId, asObjectKey } from '../lib/store/object-keys.ts';

const spec = {
  specId: 1,
  fields: [{ sourceId: 2, fieldId: 1000, name: 'at_day', transform: { kind: 'day' as const } }],
};
const layout: RowLayout = { spec, order: UNSORTED };
const NOW = 1_000_000;

let nextId = 1;
function file(day: number, addedAt: number, specId = 1): DataFile {
  const id = nextId++;
  return newDataFile({
    fileId: asFileId(id),
    objectKey: asObjectKey(`t/data/${String(id).padStart(8, '0')}-x.parquet`),
    rowCount: 100,
    sizeBytes: 1000,
    addedLsn: asLsn(1n),
    stats: new Map(),
    specId,
    partition: [day],
    addedAt,
  });
}

const opts = (extra = {}) => ({
  targetFileBytes: 1 << 20,
  deletedRatio: 0.2,
  minSmallFiles: 4,
  nextFileId: () => asFileId(0),
  objectKeyFor: () => asObjectKey(''),
  startLsn: asLsn(1n),
  layout,
  smallFileAgeMs: 60_000,
  now: NOW,
  ...extra,
});

describe('partitioned compaction plans', () => {
  it('merges a partition once it has enough small files, never across partitions', () => {
    const files = [file(1, NOW), file(1, NOW), file(1, NOW), file(1, NOW), file(2, NOW), file(2, NOW)];
    const plan = planLayoutCompaction(files, opts())!;
    expect(plan.inputs.map((i) => i.fileId)).toEqual(files.slice(0, 4).map((f) => f.fileId));
    expect(plan.layout?.spec.specId).toBe(1);
    // Outputs are named as the job finds its partitions, not reserved up front.
    expect(plan.outputs).toEqual([]);
  });

  it('lets a partition with few small files wait until they age, then merges them', () => {
    const young = [file(3, NOW - 1000), file(3, NOW - 500), file(4, NOW - 100)];
    expect(planLayoutCompaction(young, opts())).toBeUndefined();
    const aged = [file(5, NOW - 120_000), file(5, NOW - 500), file(6, NOW - 120_000)];
    const plan = planLayoutCompaction(aged, opts())!;
    expect(plan.inputs.map((i) => i.fileId)).toEqual(aged.slice(0, 2).map((f) => f.fileId));
  });

  it('rewrites files of an earlier spec into the current one first, even a single one', () => {
    const old = file(7, NOW, 0);
    const files = [file(8, NOW), file(8, NOW), file(8, NOW), file(8, NOW), old];
    const plan = planLayoutCompaction(files, opts())!;
    expect(plan.inputs.map((i) => i.fileId)).toEqual([old.fileId]);
  });
});
