/**
 * Column statistics in Iceberg's form: lower and upper bounds use the single-value binary
 * serialization (spec Appendix D), strings and binary truncated to 16 characters/bytes the way
 * the default metrics mode `truncate(16)` does (a lower bound is a prefix; an upper bound is a
 * prefix whose last character or byte is incremented, or no bound if that is impossible).
 */
import type { IcebergType } from '../schema/iceberg-type.ts';
import { compareUtf8, type Value } from '../schema/values.ts';

export const TRUNCATE_LENGTH = 16;

function le(n: number, bytes: number, write: (v: DataView) => void): Buffer {
  const b = Buffer.alloc(bytes);
  write(new DataView(b.buffer, b.byteOffset, bytes));
  return b;
}

/** Two's complement big-endian, in the fewest bytes that hold the value. */
export function decimalBytes(v: bigint): Buffer {
  let n = 1;
  while (v < -(1n << BigInt(8 * n - 1)) || v >= 1n << BigInt(8 * n - 1)) n++;
  const b = Buffer.alloc(n);
  let x = BigInt.asUintN(8 * n, v);
  for (let i = n - 1; i >= 0; i--) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return b;
}

function uuidBytes(s: string): Buffer {
  return Buffer.from(s.replace(/-/g, ''), 'hex');
}

/** Appendix D serialization of one value; undefined for types without bounds. */
export function serializeValue(t: IcebergType, v: Value): Buffer | undefined {
  switch (t.kind) {
    case 'boolean':
      return Buffer.from([v ? 1 : 0]);
    case 'int':
    case 'date':
      return le(4, 4, (d) => d.setInt32(0, v as number, true));
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return le(8, 8, (d) => d.setBigInt64(0, v as bigint, true));
    case 'float':
      return le(4, 4, (d) => d.setFloat32(0, v as number, true));
    case 'double':
      return le(8, 8, (d) => d.setFloat64(0, v as number, true));
    case 'decimal':
      return decimalBytes(v as bigint);
    case 'string':
      return Buffer.from(v as string, 'utf8');
    case 'uuid':
      return uuidBytes(v as string);
    case 'binary':
    case 'fixed': {
      const u = v as Uint8Array;
      return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
    }
    default:
      return undefined;
  }
}

export function deserializeValue(t: IcebergType, b: Buffer): Value {
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
      return d.getBigInt64(0, true);
    case 'float':
      return d.getFloat32(0, true);
    case 'double':
      return d.getFloat64(0, true);
    case 'decimal': {
      let x = 0n;
      for (const byte of b) x = (x << 8n) | BigInt(byte);
      return BigInt.asIntN(8 * b.length, x);
    }
    case 'string':
      return b.toString('utf8');
    case 'uuid': {
      const h = b.toString('hex');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }
    default:
      return new Uint8Array(b);
  }
}

/** Lower bound of a string column: its first 16 code points. */
function truncateStringMin(s: string): string {
  const cps = Array.from(s);
  return cps.length <= TRUNCATE_LENGTH ? s : cps.slice(0, TRUNCATE_LENGTH).join('');
}

/** Upper bound: first 16 code points with the last one incremented (skipping surrogates). */
function truncateStringMax(s: string): string | undefined {
  const cps = Array.from(s);
  if (cps.length <= TRUNCATE_LENGTH) return s;
  const kept = cps.slice(0, TRUNCATE_LENGTH);
  for (let i = kept.length - 1; i >= 0; i--) {
    let cp = kept[i].codePointAt(0)! + 1;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xe000;
    if (cp <= 0x10ffff) {
      const out = [...kept.slice(0, i), String.fromCodePoint(cp)].join('');
      if (compareUtf8(out, s) > 0) return out;
    }
  }
  return undefined;
}

function truncateBinaryMax(b: Buffer): Buffer | undefined {
  if (b.length <= TRUNCATE_LENGTH) return b;
  const kept = Buffer.from(b.subarray(0, TRUNCATE_LENGTH));
  for (let i = kept.length - 1; i >= 0; i--) {
    if (kept[i] < 0xff) {
      const out = Buffer.from(kept.subarray(0, i + 1));
      out[i]++;
      return out;
    }
  }
  return undefined;
}

export function lowerBound(t: IcebergType, v: Value): Buffer | undefined {
  if (t.kind === 'string') return serializeValue(t, truncateStringMin(v as string));
  const b = serializeValue(t, v);
  if (b && t.kind === 'binary' && b.length > TRUNCATE_LENGTH)
    return Buffer.from(b.subarray(0, TRUNCATE_LENGTH));
  return b;
}

export function upperBound(t: IcebergType, v: Value): Buffer | undefined {
  if (t.kind === 'string') {
    const s = truncateStringMax(v as string);
    return s === undefined ? undefined : serializeValue(t, s);
  }
  const b = serializeValue(t, v);
  if (b && t.kind === 'binary') return truncateBinaryMax(b);
  return b;
}
