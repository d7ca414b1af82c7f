/**
 * Iceberg partition transforms (spec, "Partition Transforms"): which source types each takes,
 * the type of its result, the value it gives (Appendix B hashing for `bucket`), and how a
 * predicate on the source column becomes one on the partition value, so a reader can skip
 * files by partition.
 */
import { decimalBytes } from './decimal-bytes.ts';
import type { IcebergType } from './iceberg-type.ts';
import { hashLong, murmur3 } from './murmur3.ts';
import { civilFromDays } from './temporal.ts';
import type { Value } from './values.ts';

export type Transform =
  | { kind: 'identity' | 'year' | 'month' | 'day' | 'hour' | 'void' }
  | { kind: 'bucket'; n: number }
  | { kind: 'truncate'; width: number };

export type TransformKind = Transform['kind'];

const PARAM = /^(bucket|truncate)\[(\d+)\]$/;
const SIMPLE = new Set(['identity', 'year', 'month', 'day', 'hour', 'void']);

/** `day`, `bucket[16]`, `truncate[4]` … → a transform; undefined when it is none of Iceberg's. */
export function parseTransform(text: string): Transform | undefined {
  const t = text.trim();
  if (SIMPLE.has(t)) return { kind: t as 'identity' };
  const m = PARAM.exec(t);
  if (!m) return undefined;
  const n = Number(m[2]);
  if (!Number.isSafeInteger(n) || n < 1 || n > 2 ** 31 - 1) return undefined;
  return m[1] === 'bucket' ? { kind: 'bucket', n } : { kind: 'truncate', width: n };
}

export function transformText(t: Transform): string {
  if (t.kind === 'bucket') return `bucket[${t.n}]`;
  if (t.kind === 'truncate') return `truncate[${t.width}]`;
  return t.kind;
}

const TEMPORAL = new Set(['date', 'timestamp', 'timestamptz']);
const BUCKETABLE = new Set([
  'int',
  'long',
  'decimal',
  'date',
  'time',
  'timestamp',
  'timestamptz',
  'string',
  'uuid',
  'binary',
  'fixed',
]);
const TRUNCATABLE = new Set(['int', 'long', 'decimal', 'string', 'binary']);
const NESTED = new Set(['struct', 'list', 'map']);

/** Why `t` cannot partition a column of type `type`; undefined when it can. */
export function transformMisfit(t: Transform, type: IcebergType): string | undefined {
  const k = type.kind;
  if (t.kind === 'void') return undefined;
  if (NESTED.has(k)) return `a ${k} column cannot be partitioned by`;
  const ok =
    t.kind === 'identity' ||
    ((t.kind === 'year' || t.kind === 'month' || t.kind === 'day') && TEMPORAL.has(k)) ||
    (t.kind === 'hour' && (k === 'timestamp' || k === 'timestamptz')) ||
    (t.kind === 'bucket' && BUCKETABLE.has(k)) ||
    (t.kind === 'truncate' && TRUNCATABLE.has(k));
  if (ok) return undefined;
  const takes: Record<string, string> = {
    year: 'date, timestamp or timestamptz',
    month: 'date, timestamp or timestamptz',
    day: 'date, timestamp or timestamptz',
    hour: 'timestamp or timestamptz',
    bucket: 'int, long, decimal, date, time, timestamp(tz), string, uuid, binary or fixed',
    truncate: 'int, long, decimal, string or binary',
  };
  return `${transformText(t)} does not apply to a ${k} column (it takes ${takes[t.kind]})`;
}

/** The type of the partition value (`day` gives a date, as Java's transform does). */
export function resultType(t: Transform, source: IcebergType): IcebergType {
  switch (t.kind) {
    case 'year':
    case 'month':
    case 'hour':
    case 'bucket':
      return { kind: 'int' };
    case 'day':
      return { kind: 'date' };
    default:
      return source;
  }
}

/** The suffix Iceberg gives a partition field's default name (`placed_at_day`, `id_bucket`). */
export function defaultFieldName(source: string, t: Transform): string {
  switch (t.kind) {
    case 'identity':
      return source;
    case 'truncate':
      return `${source}_trunc`;
    case 'void':
      return `${source}_null`;
    default:
      return `${source}_${t.kind}`;
  }
}

/** Microseconds per day and per hour. */
const DAY_US = 86_400_000_000;
const HOUR_US = 3_600_000_000;

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** Values this far from 0 divide in doubles (µs: 142 years either side of 1970). */
const DOUBLE_RANGE = 2n ** 52n;

/**
 * ⌊v / d⌋ of a 64-bit value by a positive divisor, as a number. Within 2^52 doubles do it: the
 * quotient's floor is off by at most one, and the remainder (exact: q·d stays below 2^53) says
 * which way; the rest go through bigint division.
 */
export function floorDivToNumber(v: bigint, d: number): number {
  if (v > -DOUBLE_RANGE && v < DOUBLE_RANGE) {
    const n = Number(v);
    let q = Math.floor(n / d);
    const r = n - q * d;
    if (r < 0) q--;
    else if (r >= d) q++;
    return q;
  }
  return Number(floorDiv(v, BigInt(d)));
}

/** Days from 1970-01-01 of a date (days) or timestamp (µs) value. */
function daysOf(type: IcebergType, v: Value): number {
  return type.kind === 'date' ? (v as number) : floorDivToNumber(v as bigint, DAY_US);
}

function utf8(s: string): Uint8Array {
  return Buffer.from(s, 'utf8');
}

function uuidBytes(s: string): Uint8Array {
  return Buffer.from(s.replace(/-/g, ''), 'hex');
}

/** The 32-bit hash of a value as Appendix B defines it for its type. */
export function hashValue(type: IcebergType, v: Value): number {
  switch (type.kind) {
    case 'int':
    case 'date':
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return hashLong(v as bigint | number);
    case 'decimal':
      return murmur3(decimalBytes(v as bigint));
    case 'string':
      return murmur3(utf8(v as string));
    case 'uuid':
      return murmur3(uuidBytes(v as string));
    case 'binary':
    case 'fixed':
      return murmur3(v as Uint8Array);
    default:
      throw new TypeError(`a ${type.kind} value has no Iceberg hash`);
  }
}

/** The first `w` code points of a string. */
function truncateString(s: string, w: number): string {
  let i = 0;
  let n = 0;
  while (i < s.length && n < w) {
    const c = s.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1;
    n++;
  }
  return i >= s.length ? s : s.slice(0, i);
}

/** The function a transform applies to non-null source values of `type` (null stays null). */
export function transformFunction(t: Transform, type: IcebergType): (v: Value) => Value {
  const nullSafe =
    (f: (v: Value) => Value) =>
    (v: Value): Value =>
      v === null || v === undefined ? null : f(v);
  switch (t.kind) {
    case 'identity':
      return nullSafe((v) => v);
    case 'void':
      return () => null;
    case 'bucket': {
      const n = t.n;
      return nullSafe((v) => (hashValue(type, v) & 0x7fffffff) % n);
    }
    case 'truncate': {
      const w = t.width;
      const wb = BigInt(w);
      if (type.kind === 'int') return nullSafe((v) => (v as number) - ((((v as number) % w) + w) % w));
      if (type.kind === 'long' || type.kind === 'decimal')
        return nullSafe((v) => (v as bigint) - ((((v as bigint) % wb) + wb) % wb));
      if (type.kind === 'string') return nullSafe((v) => truncateString(v as string, w));
      return nullSafe((v) => {
        const b = v as Uint8Array;
        return b.length <= w ? b : b.slice(0, w);
      });
    }
    case 'day':
      return nullSafe((v) => daysOf(type, v));
    case 'hour':
      return nullSafe((v) => floorDivToNumber(v as bigint, HOUR_US));
    case 'year':
      return nullSafe((v) => civilFromDays(daysOf(type, v))[0] - 1970);
    case 'month':
      return nullSafe((v) => {
        const [y, m] = civilFromDays(daysOf(type, v));
        return (y - 1970) * 12 + m - 1;
      });
  }
}

export type ComparisonOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

/**
 * What `source op literal` says of the partition value (spec "Partition Transforms": order-
 * preserving transforms project ranges, `bucket` only equality), or undefined when it says
 * nothing (every partition may hold matching rows).
 */
export function projectPredicate(
  t: Transform,
  type: IcebergType,
  op: ComparisonOp,
  literal: Value,
): { op: ComparisonOp; value: Value } | undefined {
  if (t.kind === 'void' || op === '!=') return t.kind === 'identity' ? { op, value: literal } : undefined;
  const f = transformFunction(t, type);
  if (t.kind === 'identity') return { op, value: literal };
  if (t.kind === 'bucket') return op === '=' ? { op, value: f(literal) } : undefined;
  // Order-preserving (year, month, day, hour, truncate): x < c ⇒ f(x) ≤ f(c), x > c ⇒ f(x) ≥ f(c).
  const value = f(literal);
  if (op === '<' || op === '<=') return { op: '<=', value };
  if (op === '>' || op === '>=') return { op: '>=', value };
  return { op: '=', value };
}
