/**
 * Values: JSON in, JSON out, exactly. Each Iceberg type has one in-memory representation:
 *
 * | type | value |
 * | --- | --- |
 * | boolean | boolean |
 * | int, date (days) | number |
 * | float, double | number |
 * | long, time (µs), timestamp (µs), timestamptz (µs, UTC) | bigint |
 * | decimal(P,S) | bigint (unscaled) |
 * | string, uuid (lower-case canonical) | string |
 * | binary, fixed[L] | Uint8Array |
 * | list<T> | array |
 * | map<K,V> | array of [key, value] |
 * | struct<...> | array of field values, in field order |
 *
 * A null is `null`. Decoding errors name the column path and the problem.
 */
import type { IcebergType, NestedField } from './iceberg-type.ts';
import { typeName } from './iceberg-type.ts';
import { formatDate, formatTime, formatTimestamp, parseDate, parseTime, parseTimestamp } from './temporal.ts';

/** A JSON number whose text was kept because a double could not hold it exactly. */
export class ExactNumber {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/**
 * A JSON number arrived as a double that may not be the number the client wrote (an integer
 * beyond 2^53, a decimal with more than 15 significant digits). The request is parsed again
 * keeping number text exactly (see exact-json.ts), which is slower and so only done then.
 */
export class InexactNumberError extends Error {
  constructor(readonly path: string) {
    super(`${path}: number may have lost digits in parsing`);
  }
}

/** Significant digits of a double's shortest decimal form (at least what the client sent if ≤ 15). */
function significantDigits(n: number): number {
  const t = String(Math.abs(n)).replace(/e.*$/, '').replace('.', '').replace(/^0+/, '');
  return t.length;
}

export class ValueError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
  }
}

export type Value = unknown;
export type Decoder = (json: unknown, path: string) => Value;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const INT_TEXT_RE = /^[+-]?\d+$/;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
  if (typeof v === 'bigint' || v instanceof ExactNumber) return String(v);
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** No lone surrogates (ES2024's String.prototype.isWellFormed, in Node ≥ 20). */
export function isWellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}

function fail(path: string, type: IcebergType, v: unknown, why?: string): never {
  throw new ValueError(path, `expected ${typeName(type)}, got ${describe(v)}${why ? ` (${why})` : ''}`);
}

function toBigIntInteger(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return undefined;
    if (!Number.isSafeInteger(v)) return undefined;
    return BigInt(v);
  }
  const text = typeof v === 'string' ? v.trim() : v instanceof ExactNumber ? v.text : undefined;
  if (text !== undefined && INT_TEXT_RE.test(text)) return BigInt(text);
  return undefined;
}

/** Parses decimal text (or a number) to an unscaled bigint at `scale`, or an error message. */
export function parseDecimal(v: unknown, precision: number, scale: number): bigint | string {
  let text: string;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return 'not a finite number';
    text = String(v);
  } else if (typeof v === 'string' || v instanceof ExactNumber) {
    text = String(v).trim();
  } else if (typeof v === 'bigint') {
    text = v.toString();
  } else {
    return 'not a number or numeric string';
  }
  const m = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return 'not a decimal number';
  let intPart = m[2];
  let frac = m[3] ?? '';
  const exp = Number(m[4] ?? '0');
  if (exp > 0) {
    const take = frac.slice(0, exp).padEnd(exp, '0');
    intPart += take;
    frac = frac.slice(exp);
  } else if (exp < 0) {
    const n = -exp;
    const padded = intPart.padStart(n + 1, '0');
    frac = padded.slice(padded.length - n) + frac;
    intPart = padded.slice(0, padded.length - n);
  }
  if (frac.length > scale) {
    if (/[1-9]/.test(frac.slice(scale))) return `has more than ${scale} digits after the decimal point`;
    frac = frac.slice(0, scale);
  }
  const digits = (intPart + frac.padEnd(scale, '0')).replace(/^0+(?=\d)/, '');
  const unscaled = BigInt(digits === '' ? '0' : digits);
  if (unscaled.toString().length > precision && unscaled !== 0n) return `exceeds precision ${precision}`;
  return m[1] === '-' ? -unscaled : unscaled;
}

export function formatDecimal(unscaled: bigint, scale: number): string {
  const neg = unscaled < 0n;
  let s = (neg ? -unscaled : unscaled).toString();
  if (scale > 0) {
    s = s.padStart(scale + 1, '0');
    s = `${s.slice(0, s.length - scale)}.${s.slice(s.length - scale)}`;
  }
  return neg ? `-${s}` : s;
}

function parseUuid(s: string): string | undefined {
  return UUID_RE.test(s) ? s.toLowerCase() : undefined;
}

function decodeBase64(s: string): Uint8Array | undefined {
  if (!BASE64_RE.test(s)) return undefined;
  const b = Buffer.from(s, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Builds the decoder for a type: JSON value → in-memory value, or throws {@link ValueError}. */
export function decoderFor(type: IcebergType): Decoder {
  switch (type.kind) {
    case 'boolean':
      return (v, p) => (typeof v === 'boolean' ? v : fail(p, type, v));
    case 'int':
      return (v, p) => {
        const n =
          typeof v === 'number' ? v : typeof v === 'string' && INT_TEXT_RE.test(v.trim()) ? Number(v) : NaN;
        if (!Number.isInteger(n)) fail(p, type, v);
        if (n < INT32_MIN || n > INT32_MAX) fail(p, type, v, 'out of range for int');
        return n;
      };
    case 'long':
      return (v, p) => {
        if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v))
          throw new InexactNumberError(p);
        const b = toBigIntInteger(v);
        if (b === undefined) fail(p, type, v);
        if (b < INT64_MIN || b > INT64_MAX) fail(p, type, v, 'out of range for long');
        return b;
      };
    case 'float':
    case 'double':
      return (v, p) => {
        let n: number;
        if (typeof v === 'number') n = v;
        else if (v instanceof ExactNumber) n = Number(v.text);
        else if (v === 'NaN') n = Number.NaN;
        else if (v === 'Infinity') n = Number.POSITIVE_INFINITY;
        else if (v === '-Infinity') n = Number.NEGATIVE_INFINITY;
        else return fail(p, type, v);
        // A JSON number that is not finite overflowed (1e400); "Infinity" must be written as a string.
        if (typeof v !== 'string' && !Number.isFinite(n))
          return fail(p, type, v, `out of range for ${type.kind}`);
        if (type.kind === 'float') {
          const f = Math.fround(n);
          if (Number.isFinite(n) && !Number.isFinite(f)) fail(p, type, v, 'out of range for float');
          return f;
        }
        return n;
      };
    case 'decimal':
      return (v, p) => {
        if (typeof v === 'number' && (significantDigits(v) > 15 || /e/i.test(String(v))))
          throw new InexactNumberError(p);
        const r = parseDecimal(v, type.precision, type.scale);
        if (typeof r === 'string') fail(p, type, v, r);
        return r;
      };
    case 'date':
      return (v, p) => {
        if (typeof v === 'number' && Number.isInteger(v)) return v;
        if (typeof v !== 'string') fail(p, type, v);
        const r = parseDate(v);
        if (typeof r === 'string') throw new ValueError(p, r);
        return r;
      };
    case 'time':
      return (v, p) => {
        if (typeof v !== 'string') fail(p, type, v);
        const r = parseTime(v);
        if (typeof r === 'string') throw new ValueError(p, r);
        return r;
      };
    case 'timestamp':
    case 'timestamptz': {
      const withZone = type.kind === 'timestamptz';
      return (v, p) => {
        if (typeof v === 'string') {
          const r = parseTimestamp(v, withZone);
          if (typeof r === 'string') throw new ValueError(p, r);
          if (r < INT64_MIN || r > INT64_MAX) fail(p, type, v, 'out of range');
          return r;
        }
        if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v))
          throw new InexactNumberError(p);
        const b = toBigIntInteger(v);
        if (b === undefined) fail(p, type, v, 'use an ISO-8601 string or microseconds since the epoch');
        return b;
      };
    }
    case 'string':
      return (v, p) =>
        typeof v === 'string'
          ? isWellFormed(v)
            ? v
            : fail(p, type, v, 'not valid Unicode (a lone surrogate escape such as \\ud800)')
          : fail(p, type, v);
    case 'uuid':
      return (v, p) => (typeof v === 'string' && parseUuid(v)) || fail(p, type, v);
    case 'binary':
      return (v, p) => (typeof v === 'string' && decodeBase64(v)) || fail(p, type, v, 'use base64');
    case 'fixed':
      return (v, p) => {
        const b = typeof v === 'string' ? decodeBase64(v) : undefined;
        if (!b) fail(p, type, v, 'use base64');
        if (b.length !== type.length) fail(p, type, v, `decodes to ${b.length} bytes, not ${type.length}`);
        return b;
      };
    case 'list': {
      const el = nullable(decoderFor(type.element), !type.elementRequired, type.element);
      return (v, p) => {
        if (!Array.isArray(v)) fail(p, type, v);
        return v.map((x, i) => el(x, `${p}[${i}]`));
      };
    }
    case 'map': {
      const kd = decoderFor(type.key);
      const vd = nullable(decoderFor(type.value), !type.valueRequired, type.value);
      return (v, p) => {
        const out: [Value, Value][] = [];
        const seen = new Set<string>();
        const add = (k: Value, val: Value, path: string): void => {
          const id = canonicalScalar(k);
          if (seen.has(id)) throw new ValueError(path, `duplicate map key ${describe(k)}`);
          seen.add(id);
          out.push([k, val]);
        };
        if (Array.isArray(v)) {
          v.forEach((e, i) => {
            const path = `${p}[${i}]`;
            if (Array.isArray(e) && e.length === 2) add(kd(e[0], `${path}[0]`), vd(e[1], `${path}[1]`), path);
            else if (e !== null && typeof e === 'object' && 'key' in e) {
              const entry = e as { key: unknown; value?: unknown };
              add(kd(entry.key, `${path}.key`), vd(entry.value ?? null, `${path}.value`), path);
            } else
              throw new ValueError(
                path,
                'map entries must be [key, value] pairs or {"key", "value"} objects',
              );
          });
        } else if (v !== null && typeof v === 'object') {
          for (const [k, val] of Object.entries(v)) add(kd(k, `${p}.${k}`), vd(val, `${p}.${k}`), p);
        } else fail(p, type, v);
        return out;
      };
    }
    case 'struct': {
      const fields = type.fields.map((f) => ({ f, d: nullable(decoderFor(f.type), !f.required, f.type) }));
      const names = new Set(type.fields.map((f) => f.name));
      return (v, p) => {
        if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(p, type, v);
        const obj = v as Record<string, unknown>;
        for (const k of Object.keys(obj))
          if (!names.has(k)) throw new ValueError(`${p}.${k}`, 'unknown field');
        return fields.map(({ f, d }) => d(obj[f.name] ?? null, `${p}.${f.name}`));
      };
    }
  }
}

function nullable(d: Decoder, allowNull: boolean, type: IcebergType): Decoder {
  return (v, p) => {
    if (v === null || v === undefined) {
      if (allowNull) return null;
      throw new ValueError(p, `is required (${typeName(type)}), got null`);
    }
    return d(v, p);
  };
}

export function fieldDecoder(f: NestedField): Decoder {
  return nullable(decoderFor(f.type), !f.required, f.type);
}

/** A string that identifies a scalar value; used for map keys and primary keys. */
export function canonicalScalar(v: Value): string {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (typeof v === 'boolean') return v ? 't' : 'f';
  return String(v);
}

/** The key string of a primary key: the value itself for one column, length-prefixed parts for several. */
export function keyString(values: Value[]): string {
  if (values.length === 1) return canonicalScalar(values[0]);
  return keyFromParts(values.map(canonicalScalar));
}

/** The key string from each key column's {@link canonicalScalar} text. */
export function keyFromParts(parts: readonly string[]): string {
  if (parts.length === 1) return parts[0];
  let s = '';
  for (const c of parts) s += `${c.length}:${c}`;
  return s;
}

// ---------------------------------------------------------------------------------------------
// JSON out. Text is produced directly so longs beyond 2^53 keep every digit.

export type Encoder = (v: Value) => string;

export function encoderFor(type: IcebergType): Encoder {
  switch (type.kind) {
    case 'boolean':
    case 'int':
    case 'date':
      if (type.kind === 'date') return (v) => `"${formatDate(v as number)}"`;
      return (v) => String(v);
    case 'long':
      return (v) => (v as bigint).toString();
    case 'float':
    case 'double':
      return (v) => (Number.isFinite(v as number) ? String(v) : `"${String(v)}"`);
    case 'decimal':
      return (v) => `"${formatDecimal(v as bigint, type.scale)}"`;
    case 'time':
      return (v) => `"${formatTime(v as bigint)}"`;
    case 'timestamp':
      return (v) => `"${formatTimestamp(v as bigint, false)}"`;
    case 'timestamptz':
      return (v) => `"${formatTimestamp(v as bigint, true)}"`;
    case 'string':
    case 'uuid':
      return (v) => JSON.stringify(v);
    case 'binary':
    case 'fixed':
      return (v) => `"${canonicalScalar(v)}"`;
    case 'list': {
      const e = nullableEncoder(encoderFor(type.element));
      return (v) => `[${(v as Value[]).map(e).join(',')}]`;
    }
    case 'map': {
      const k = encoderFor(type.key);
      const val = nullableEncoder(encoderFor(type.value));
      if (type.key.kind === 'string') {
        return (v) =>
          `{${(v as [Value, Value][]).map(([a, b]) => `${JSON.stringify(a)}:${val(b)}`).join(',')}}`;
      }
      return (v) =>
        `[${(v as [Value, Value][]).map(([a, b]) => `{"key":${k(a)},"value":${val(b)}}`).join(',')}]`;
    }
    case 'struct': {
      const fs = type.fields.map((f) => ({
        name: JSON.stringify(f.name),
        e: nullableEncoder(encoderFor(f.type)),
      }));
      return (v) => `{${fs.map((f, i) => `${f.name}:${f.e((v as Value[])[i])}`).join(',')}}`;
    }
  }
}

function nullableEncoder(e: Encoder): Encoder {
  return (v) => (v === null || v === undefined ? 'null' : e(v));
}

export function fieldEncoder(f: NestedField): Encoder {
  return nullableEncoder(encoderFor(f.type));
}

/** Orders two non-null scalar values of one type (used for column statistics). */
export function compareScalars(a: Value, b: Value): number {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b);
  if (typeof a === 'string' && typeof b === 'string') return compareUtf8(a, b);
  if (typeof a === 'boolean') return Number(a) - Number(b as boolean);
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

/** Compares strings by their UTF-8 bytes (code points), as Iceberg and Parquet order them. */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === n) return a.length - b.length;
  const x = a.charCodeAt(i);
  const y = b.charCodeAt(i);
  // UTF-16 units order like code points except surrogates (U+10000 and up), which sort
  // below U+E000…U+FFFF as units but above them as code points.
  if (x < 0xd800 && y < 0xd800) return x < y ? -1 : 1;
  const cx = a.codePointAt(i)!;
  const cy = b.codePointAt(i)!;
  return cx < cy ? -1 : 1;
}
