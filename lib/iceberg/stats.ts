/**
 * Column statistics in Iceberg's manifest form.
 *
 * Lower and upper bounds use the binary single-value serialization of spec Appendix D:
 * little-endian ints/longs/floats/doubles (dates as int days; times and timestamps as long µs),
 * UTF-8 strings and raw binary without a length, 16-byte big-endian UUIDs, and decimals as the
 * unscaled value in two's complement big-endian with the fewest bytes that hold it.
 *
 * Strings and binary are truncated to 16 code points / bytes the way Iceberg's default metrics
 * mode `truncate(16)` does: a lower bound is the prefix; an upper bound is the prefix with its
 * last code point (byte) incremented, dropping trailing ones that cannot be incremented, and no
 * upper bound at all when none can. Nested types (struct, list, map) get counts but no bounds.
 *
 * Floats: NaN is never a bound; a zero lower bound is written as -0.0 and a zero upper bound as
 * +0.0, so bounds stay valid under IEEE 754 totalOrder whichever zero the column held.
 */

import { decimalBytes } from '../schema/decimal-bytes.ts';
import { type IcebergType, isPrimitive, type NestedField } from '../schema/iceberg-type.ts';

export { decimalBytes };

export const TRUNCATE_LENGTH = 16;

/** Statistics of one top-level column of a data file, values in the in-memory representation. */
export interface ColumnStats {
  valueCount: number;
  nullCount: number;
  nanCount?: number;
  lower?: unknown;
  upper?: unknown;
}

/** The metrics maps of a manifest `data_file` (field id → value). */
export interface FileMetrics {
  valueCounts: { key: number; value: number }[];
  nullValueCounts: { key: number; value: number }[];
  nanValueCounts: { key: number; value: number }[];
  lowerBounds: { key: number; value: Buffer }[];
  upperBounds: { key: number; value: Buffer }[];
}

function fixedWidth(bytes: number, write: (v: DataView) => void): Buffer {
  const b = Buffer.alloc(bytes);
  write(new DataView(b.buffer, b.byteOffset, bytes));
  return b;
}

function asBigInt(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^[+-]?\d+$/.test(v)) return BigInt(v);
  throw new TypeError(`expected an integer value, got ${typeof v} ${String(v)}`);
}

function asNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  throw new TypeError(`expected a number, got ${typeof v}`);
}

function asBytes(v: unknown): Buffer {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError(`expected bytes, got ${typeof v}`);
}

const UUID_HEX = /^[0-9a-fA-F]{32}$/;

/**
 * Appendix D binary serialization of one non-null value; undefined for nested types, which have
 * no single-value serialization.
 */
export function serializeValue(t: IcebergType, v: unknown): Buffer | undefined {
  switch (t.kind) {
    case 'boolean':
      return Buffer.from([v ? 1 : 0]);
    case 'int':
    case 'date':
      return fixedWidth(4, (d) => d.setInt32(0, asNumber(v), true));
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return fixedWidth(8, (d) => d.setBigInt64(0, asBigInt(v), true));
    case 'float':
      return fixedWidth(4, (d) => d.setFloat32(0, asNumber(v), true));
    case 'double':
      return fixedWidth(8, (d) => d.setFloat64(0, asNumber(v), true));
    case 'decimal':
      return decimalBytes(asBigInt(v));
    case 'string':
      return Buffer.from(String(v), 'utf8');
    case 'uuid': {
      const hex = String(v).replace(/-/g, '');
      if (!UUID_HEX.test(hex)) throw new TypeError(`not a UUID: ${String(v)}`);
      return Buffer.from(hex, 'hex');
    }
    case 'binary':
    case 'fixed':
      return asBytes(v);
    default:
      return undefined;
  }
}

/** The inverse of {@link serializeValue}, returning the in-memory representation. */
export function deserializeValue(t: IcebergType, b: Uint8Array): unknown {
  const d = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (t.kind) {
    case 'boolean':
      return b[0] !== 0;
    case 'int':
    case 'date':
      return d.getInt32(0, true);
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      // A bound written before the column was promoted from int is 4 bytes (Iceberg allows it).
      return b.length === 4 ? BigInt(d.getInt32(0, true)) : d.getBigInt64(0, true);
    case 'float':
      return d.getFloat32(0, true);
    case 'double':
      return b.length === 4 ? d.getFloat32(0, true) : d.getFloat64(0, true);
    case 'decimal': {
      let x = 0n;
      for (const byte of b) x = (x << 8n) | BigInt(byte);
      return b.length === 0 ? 0n : BigInt.asIntN(8 * b.length, x);
    }
    case 'string':
      return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
    case 'uuid': {
      const h = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }
    case 'binary':
    case 'fixed':
      return new Uint8Array(b);
    default:
      throw new TypeError(`type ${t.kind} has no single-value serialization`);
  }
}

/** Lower bound of a string: its first 16 code points. */
export function truncateStringMin(s: string, length = TRUNCATE_LENGTH): string {
  const cps = Array.from(s);
  return cps.length <= length ? s : cps.slice(0, length).join('');
}

/**
 * Upper bound of a string: the string itself if it has at most 16 code points, else the first
 * 16 with the last incremented (a code point that cannot be incremented is dropped and the one
 * before it tried; surrogates are skipped, they are not valid in UTF-8); undefined if none can be.
 */
export function truncateStringMax(s: string, length = TRUNCATE_LENGTH): string | undefined {
  const cps = Array.from(s);
  if (cps.length <= length) return s;
  for (let i = length - 1; i >= 0; i--) {
    let next = cps[i].codePointAt(0)! + 1;
    if (next >= 0xd800 && next <= 0xdfff) next = 0xe000;
    if (next <= 0x10ffff) return cps.slice(0, i).join('') + String.fromCodePoint(next);
  }
  return undefined;
}

export function truncateBinaryMin(b: Uint8Array, length = TRUNCATE_LENGTH): Buffer {
  return Buffer.from(b.subarray(0, Math.min(length, b.length)));
}

/** Upper bound of binary: the prefix with its last byte below 0xFF incremented; undefined if all are 0xFF. */
export function truncateBinaryMax(b: Uint8Array, length = TRUNCATE_LENGTH): Buffer | undefined {
  if (b.length <= length) return Buffer.from(b);
  for (let i = length - 1; i >= 0; i--) {
    if (b[i] < 0xff) {
      const out = Buffer.from(b.subarray(0, i + 1));
      out[i]++;
      return out;
    }
  }
  return undefined;
}

function isNaNValue(t: IcebergType, v: unknown): boolean {
  return (t.kind === 'float' || t.kind === 'double') && typeof v === 'number' && Number.isNaN(v);
}

/** The serialized lower bound for a column whose smallest value is `v` (undefined: no bound). */
export function lowerBound(t: IcebergType, v: unknown): Buffer | undefined {
  if (v === null || v === undefined || isNaNValue(t, v)) return undefined;
  switch (t.kind) {
    case 'string':
      return Buffer.from(truncateStringMin(String(v)), 'utf8');
    case 'binary':
      return truncateBinaryMin(asBytes(v));
    case 'float':
    case 'double':
      return serializeValue(t, asNumber(v) === 0 ? -0 : v);
    default:
      return serializeValue(t, v);
  }
}

/** The serialized upper bound for a column whose largest value is `v` (undefined: no bound). */
export function upperBound(t: IcebergType, v: unknown): Buffer | undefined {
  if (v === null || v === undefined || isNaNValue(t, v)) return undefined;
  switch (t.kind) {
    case 'string': {
      const s = truncateStringMax(String(v));
      return s === undefined ? undefined : Buffer.from(s, 'utf8');
    }
    case 'binary':
      return truncateBinaryMax(asBytes(v));
    case 'float':
    case 'double':
      return serializeValue(t, asNumber(v) === 0 ? 0 : v);
    default:
      return serializeValue(t, v);
  }
}

/** Manifest metrics for a data file from per-column statistics (top-level field id → stats). */
export function fileMetrics(fields: NestedField[], stats: Map<number, ColumnStats>): FileMetrics {
  const m: FileMetrics = {
    valueCounts: [],
    nullValueCounts: [],
    nanValueCounts: [],
    lowerBounds: [],
    upperBounds: [],
  };
  for (const f of fields) {
    const s = stats.get(f.id);
    if (!s) continue;
    m.valueCounts.push({ key: f.id, value: s.valueCount });
    m.nullValueCounts.push({ key: f.id, value: s.nullCount });
    if (s.nanCount !== undefined && (f.type.kind === 'float' || f.type.kind === 'double')) {
      m.nanValueCounts.push({ key: f.id, value: s.nanCount });
    }
    if (!isPrimitive(f.type)) continue;
    const lo = lowerBound(f.type, s.lower);
    const hi = upperBound(f.type, s.upper);
    if (lo) m.lowerBounds.push({ key: f.id, value: lo });
    if (hi) m.upperBounds.push({ key: f.id, value: hi });
  }
  return m;
}

/**
 * Per-column statistics read back from manifest metrics (recovery). String and binary bounds
 * may be truncated: they still bound the column but are not its exact minimum and maximum.
 */
export function statsFromMetrics(
  fields: NestedField[],
  metrics: {
    value_counts: { key: number; value: number }[] | null;
    null_value_counts: { key: number; value: number }[] | null;
    nan_value_counts: { key: number; value: number }[] | null;
    lower_bounds: { key: number; value: Uint8Array }[] | null;
    upper_bounds: { key: number; value: Uint8Array }[] | null;
  },
): Map<number, ColumnStats> {
  const toMap = <V>(list: { key: number; value: V }[] | null): Map<number, V> =>
    new Map((list ?? []).map((kv) => [kv.key, kv.value]));
  const values = toMap(metrics.value_counts);
  const nulls = toMap(metrics.null_value_counts);
  const nans = toMap(metrics.nan_value_counts);
  const lower = toMap(metrics.lower_bounds);
  const upper = toMap(metrics.upper_bounds);
  const out = new Map<number, ColumnStats>();
  for (const f of fields) {
    const valueCount = values.get(f.id);
    if (valueCount === undefined) continue;
    const s: ColumnStats = { valueCount: Number(valueCount), nullCount: Number(nulls.get(f.id) ?? 0) };
    const nan = nans.get(f.id);
    if (nan !== undefined) s.nanCount = Number(nan);
    const lo = lower.get(f.id);
    const hi = upper.get(f.id);
    if (isPrimitive(f.type)) {
      if (lo) s.lower = deserializeValue(f.type, lo);
      if (hi) s.upper = deserializeValue(f.type, hi);
    }
    out.set(f.id, s);
  }
  return out;
}
