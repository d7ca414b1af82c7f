/**
 * Column statistics of a data file, for Iceberg manifests (value/null/NaN counts, lower and upper
 * bounds), computed from the rows as they are written so no file is read back.
 */
import type { NestedField } from '../schema/iceberg-type.ts';
import { isPrimitive } from '../schema/iceberg-type.ts';
import { compareScalars, type Value } from '../schema/values.ts';

export interface ColumnStats {
  valueCount: number;
  nullCount: number;
  nanCount?: number;
  lower?: Value;
  upper?: Value;
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
