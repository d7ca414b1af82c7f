/**
 * Column statistics of a data file, for Iceberg manifests (value/null/NaN counts, lower and upper
 * bounds), computed from the rows as they are written so no file is read back.
 */
import type * as arrow from 'apache-arrow';
import type { NestedField } from '../schema/iceberg-type.ts';
import { isPrimitive } from '../schema/iceberg-type.ts';
import { compareScalars, type Value } from '../schema/values.ts';
import { readData } from './arrow-convert.ts';

export interface ColumnStats {
  valueCount: number;
  nullCount: number;
  nanCount?: number;
  lower?: Value;
  upper?: Value;
}

/** Stats per top-level field id from MemSlice columns over the given rows (the flush path). */
export function columnStats(
  fields: NestedField[],
  columns: { stats(rows: ArrayLike<number>): ColumnStats }[],
  rows: ArrayLike<number>,
): Map<number, ColumnStats> {
  const out = new Map<number, ColumnStats>();
  fields.forEach((f, c) => {
    out.set(f.id, columns[c].stats(rows));
  });
  return out;
}

/** Stats per top-level field id; `get(column, i)` reads value i of a column. */
export function computeStats(
  fields: NestedField[],
  rowCount: number,
  get: (column: number, i: number) => Value,
): Map<number, ColumnStats> {
  const out = new Map<number, ColumnStats>();
  fields.forEach((f, c) => {
    if (!isPrimitive(f.type)) {
      out.set(f.id, { valueCount: rowCount, nullCount: countNulls(rowCount, (i) => get(c, i)) });
      return;
    }
    const floating = f.type.kind === 'float' || f.type.kind === 'double';
    let nullCount = 0;
    let nanCount = 0;
    let lower: Value;
    let upper: Value;
    for (let i = 0; i < rowCount; i++) {
      const v = get(c, i);
      if (v === null || v === undefined) {
        nullCount++;
        continue;
      }
      if (floating && Number.isNaN(v)) {
        nanCount++;
        continue;
      }
      if (lower === undefined || compareScalars(v, lower) < 0) lower = v;
      if (upper === undefined || compareScalars(v, upper) > 0) upper = v;
    }
    const s: ColumnStats = { valueCount: rowCount, nullCount };
    if (floating) s.nanCount = nanCount;
    if (lower !== undefined) {
      s.lower = lower;
      s.upper = upper;
    }
    out.set(f.id, s);
  });
  return out;
}

function countNulls(n: number, get: (i: number) => Value): number {
  let nulls = 0;
  for (let i = 0; i < n; i++) if (get(i) === null || get(i) === undefined) nulls++;
  return nulls;
}

/** Types held one number or 64-bit integer per value (in typed arrays, MemSlice and Arrow alike). */
export const NUMERIC_KINDS: ReadonlySet<string> = new Set([
  'int',
  'long',
  'float',
  'double',
  'date',
  'time',
  'timestamp',
  'timestamptz',
]);

/** Stats of one column of Arrow data (compaction outputs); merge batches with {@link mergeStats}. */
export function dataStats(f: NestedField, d: arrow.Data): ColumnStats {
  if (!NUMERIC_KINDS.has(f.type.kind)) {
    // Strings, decimals, binary, nested: through JavaScript values, compared in Iceberg's order.
    const values = readData(f.type, d);
    return computeStats([f], d.length, (_c, i) => values[i]).get(f.id)!;
  }
  // Arrow slices value buffers with the data: value i is values[i]; the validity bit is at offset + i.
  const v = d.values as Float64Array | BigInt64Array;
  const bm = d.nullCount > 0 ? d.nullBitmap : undefined;
  const off = d.offset;
  const isNull = bm ? (i: number) => (bm[(off + i) >> 3] & (1 << ((off + i) & 7))) === 0 : undefined;
  if (v instanceof BigInt64Array) return int64Stats(v, d.length, (i) => i, isNull);
  return numericStats(d.length, f.type.kind === 'float' || f.type.kind === 'double', (i) =>
    isNull?.(i) ? null : v[i],
  );
}

/** Counts and bounds of a numeric column; `at(i)` gives value i or null. NaNs are counted, not bounds. */
export function numericStats(
  n: number,
  floating: boolean,
  at: (i: number) => number | bigint | null,
): ColumnStats {
  let nullCount = 0;
  let nanCount = 0;
  let lo: number | bigint | undefined;
  let hi: number | bigint | undefined;
  for (let i = 0; i < n; i++) {
    const x = at(i);
    if (x === null) {
      nullCount++;
      continue;
    }
    if (floating && Number.isNaN(x)) {
      nanCount++;
      continue;
    }
    if (lo === undefined || x < lo) lo = x;
    if (hi === undefined || x > hi) hi = x;
  }
  const s: ColumnStats = { valueCount: n, nullCount };
  if (floating) s.nanCount = nanCount;
  if (lo !== undefined) {
    s.lower = lo;
    s.upper = hi;
  }
  return s;
}

/**
 * Counts and bounds of a 64-bit integer column (long, time, timestamps) without a bigint per
 * value: each value's words are compared (signed high, unsigned low; little-endian memory), and
 * only the two bounds become bigints. `at(i)` is the index of value i in `values`; `isNull(i)`
 * whether value i is null.
 */
export function int64Stats(
  values: BigInt64Array,
  n: number,
  at: (i: number) => number,
  isNull: ((j: number) => boolean) | undefined,
): ColumnStats {
  const words = new Int32Array(values.buffer, values.byteOffset, values.length * 2);
  let nullCount = 0;
  let lo = -1;
  let hi = -1;
  let loHigh = 0;
  let loLow = 0;
  let hiHigh = 0;
  let hiLow = 0;
  for (let i = 0; i < n; i++) {
    if (isNull?.(i)) {
      nullCount++;
      continue;
    }
    const j = at(i);
    const high = words[2 * j + 1];
    const low = words[2 * j] >>> 0;
    if (lo < 0) {
      lo = hi = j;
      loHigh = hiHigh = high;
      loLow = hiLow = low;
      continue;
    }
    if (high < loHigh || (high === loHigh && low < loLow)) {
      lo = j;
      loHigh = high;
      loLow = low;
    }
    if (high > hiHigh || (high === hiHigh && low > hiLow)) {
      hi = j;
      hiHigh = high;
      hiLow = low;
    }
  }
  const s: ColumnStats = { valueCount: n, nullCount };
  if (lo >= 0) {
    s.lower = values[lo];
    s.upper = values[hi];
  }
  return s;
}

export function mergeStats(a: ColumnStats | undefined, b: ColumnStats): ColumnStats {
  if (!a) return { ...b };
  const out: ColumnStats = { valueCount: a.valueCount + b.valueCount, nullCount: a.nullCount + b.nullCount };
  if (a.nanCount !== undefined || b.nanCount !== undefined)
    out.nanCount = (a.nanCount ?? 0) + (b.nanCount ?? 0);
  const lo = [a.lower, b.lower].filter((x) => x !== undefined);
  const hi = [a.upper, b.upper].filter((x) => x !== undefined);
  if (lo.length > 0) out.lower = lo.reduce((x, y) => (compareScalars(y, x) < 0 ? y : x));
  if (hi.length > 0) out.upper = hi.reduce((x, y) => (compareScalars(y, x) > 0 ? y : x));
  return out;
}
