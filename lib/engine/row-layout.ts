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
    const p = partitioner(layout.spec, fields);
    const readers = p.sources.map((id) => sourceReader(fields, id, valueAt));
    const values: Value[] = new Array(readers.length);
    for (let i = 0; i < count; i++) {
      for (let k = 0; k < readers.length; k++) values[k] = readers[k](i);
      const partition = p.apply(values);
      const key = tupleKey(partition);
      const g = groups.get(key);
      if (g) g.rows.push(i);
      else groups.set(key, { partition, rows: [i] });
    }
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
