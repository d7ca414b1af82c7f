/**
 * Where rows go in data files: grouped by partition (the table's default spec) and, inside each
 * group, ordered by the table's sort order. Used off the table's thread: by the column encoder
 * for a flush (column-encoder.ts) and by a compaction (compaction-job.ts).
 */
import type { NestedField } from '../schema/iceberg-type.ts';
import {
  fieldById,
  isPartitioned,
  type PartitionSpec,
  type PartitionTuple,
  partitioner,
  tupleKey,
} from '../schema/partition-spec.ts';
import { SchemaChangeError } from '../schema/schema-change.ts';
import { isSorted, rowComparator, type SortOrder } from '../schema/sort-order.ts';
import type { Value } from '../schema/values.ts';

/** A table's file layout: plain data, so it travels to worker threads as it is. */
export interface RowLayout {
  spec: PartitionSpec;
  order: SortOrder;
}

export function hasLayout(l: RowLayout | undefined): l is RowLayout {
  return l !== undefined && (isPartitioned(l.spec) || isSorted(l.order));
}

export interface RowGroup {
  partition: PartitionTuple;
  /** Row numbers (0…count-1), in the order the file holds them. */
  rows: Uint32Array;
}

/** Reads field `id`'s value of row i, given top-level column values (nested struct fields by path). */
function sourceReader(
  fields: NestedField[],
  id: number,
  valueAt: (column: number, row: number) => Value,
): (row: number) => Value {
  const path: number[] = [];
  const find = (scope: NestedField[]): boolean => {
    for (let i = 0; i < scope.length; i++) {
      const f = scope[i];
      path.push(i);
      if (f.id === id) return true;
      if (f.type.kind === 'struct' && find(f.type.fields)) return true;
      path.pop();
    }
    return false;
  };
  if (!find(fields)) throw new Error(`field ${id} is not in the schema`);
  const [top, ...inner] = path;
  if (inner.length === 0) return (row) => valueAt(top, row);
  return (row) => {
    let v = valueAt(top, row);
    for (const i of inner) {
      if (v === null || v === undefined) return null;
      v = (v as Value[])[i];
    }
    return v;
  };
}

/**
 * Rows by partition, in the order partitions first appear. Each partition field's values are
 * numbered as they first appear (a Map of the transform's results, which are primitives except
 * binary truncations, numbered by their bytes), and a row's partition is the number of its
 * fields' numbers: no tuple and no string per row, only per partition.
 */
function groupByPartition(
  spec: PartitionSpec,
  fields: NestedField[],
  count: number,
  valueAt: (column: number, row: number) => Value,
): { partition: PartitionTuple; rows: number[] }[] {
  const p = partitioner(spec, fields);
  const readers = p.sources.map((id) => sourceReader(fields, id, valueAt));
  const transforms = p.transforms;
  const width = readers.length;
  // Per field: value (or its bytes' text) → number.
  const numbers = readers.map(() => new Map<unknown, number>());
  const codes = new Uint32Array(count * width);
  for (let k = 0; k < width; k++) {
    const read = readers[k];
    const f = transforms[k];
    const seen = numbers[k];
    for (let i = 0; i < count; i++) {
      const v = f(read(i));
      const name =
        v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1') : v;
      let n = seen.get(name);
      if (n === undefined) {
        n = seen.size;
        seen.set(name, n);
      }
      codes[i * width + k] = n;
    }
  }
  // A row's partition number: its fields' numbers in mixed radix (exact while below 2^53),
  // else their text.
  const distinct = numbers.map((m) => m.size);
  const radix = distinct.reduce((r, d) => r * Math.max(1, d), 1);
  const exact = radix <= Number.MAX_SAFE_INTEGER;
  const byNumber = new Map<number | string, { partition: PartitionTuple; rows: number[] }>();
  const out: { partition: PartitionTuple; rows: number[] }[] = [];
  for (let i = 0; i < count; i++) {
    let id: number | string = 0;
    if (exact) for (let k = 0; k < width; k++) id = id * distinct[k] + codes[i * width + k];
    else id = Array.from(codes.subarray(i * width, (i + 1) * width)).join(',');
    const g = byNumber.get(id);
    if (g) {
      g.rows.push(i);
      continue;
    }
    // The partition as its first row gives it (-0 and 0 are one partition; the first says which).
    const partition = transforms.map((f, k) => f(readers[k](i)));
    const group = { partition, rows: [i] };
    byNumber.set(id, group);
    out.push(group);
  }
  return out;
}

/**
 * Groups `count` rows by partition and sorts each group (stable: rows that tie keep their
 * order), groups in a fixed order (by partition). `valueAt(c, i)` is top-level column c of row i.
 */
export function layoutRows(
  layout: RowLayout,
  fields: NestedField[],
  count: number,
  valueAt: (column: number, row: number) => Value,
): RowGroup[] {
  const groups = new Map<string, { partition: PartitionTuple; rows: number[] }>();
  if (isPartitioned(layout.spec)) {
    for (const g of groupByPartition(layout.spec, fields, count, valueAt))
      groups.set(tupleKey(g.partition), g);
  } else {
    groups.set('', { partition: [], rows: Array.from({ length: count }, (_, i) => i) });
  }
  const sortReaders = isSorted(layout.order)
    ? layout.order.fields.map((f) => sourceReader(fields, f.sourceId, valueAt))
    : [];
  const out: RowGroup[] = [];
  for (const key of [...groups.keys()].sort()) {
    const g = groups.get(key)!;
    let rows = g.rows;
    if (sortReaders.length > 0) {
      const columns = sortReaders.map((read) => rows.map((r) => read(r)));
      const cmp = rowComparator(layout.order, columns);
      const perm = rows.map((_, j) => j).sort(cmp);
      rows = perm.map((j) => g.rows[j]);
    }
    out.push({ partition: g.partition, rows: Uint32Array.from(rows) });
  }
  return out;
}

/** Throws {@link SchemaChangeError} when `fields` lack a column the layout partitions or sorts by. */
export function checkLayoutColumns(layout: RowLayout, fields: NestedField[]): void {
  for (const p of layout.spec.fields)
    if (!fieldById(fields, p.sourceId))
      throw new SchemaChangeError(
        `the table is partitioned by the column with field id ${p.sourceId} ("${p.name}"): set-partitioning without it first`,
        0,
      );
  for (const s of layout.order.fields)
    if (!fieldById(fields, s.sourceId))
      throw new SchemaChangeError(
        `the table's files are sorted by the column with field id ${s.sourceId}`,
        0,
      );
}
