/**
 * Postgres text output → exact in-memory values. pgoutput (and a text-mode SELECT) send every
 * value as the type's text output; the source's connections pin the settings that shape it
 * (`DateStyle=ISO`, `TimeZone=UTC`, `IntervalStyle=iso_8601`, `bytea_output=hex`, see
 * {@link PG_SESSION_OPTIONS}), so these parsers only accept those forms.
 *
 * Everything here is exact: int8 goes to bigint, numeric digits to an unscaled bigint,
 * timestamps to microseconds (never through Date), bytea to bytes; array and composite literals
 * are split with Postgres's own quoting rules.
 */
import { asLsn, type Lsn } from '../../lsn.ts';
import { daysFromCivil } from '../../schema/temporal.ts';

/** Startup options of every connection the source opens (the walsender included). */
export const PG_SESSION_OPTIONS =
  '-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c bytea_output=hex -c extra_float_digits=1';

export class PgTextError extends Error {}

/** A Postgres LSN `X/Y` as a bigint. */
export function parsePgLsn(text: string): Lsn {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) throw new PgTextError(`not a Postgres LSN: ${JSON.stringify(text)}`);
  return asLsn((BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`));
}

export function formatPgLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

// ---- scalars -------------------------------------------------------------------------------

export const INT32_MAX = 2147483647;
export const INT32_MIN = -2147483648;
export const INT64_MAX = (1n << 63n) - 1n;
export const INT64_MIN = -(1n << 63n);
const MICROS_PER_DAY = 86_400_000_000n;

export function parseBool(t: string): boolean {
  if (t === 't' || t === 'true') return true;
  if (t === 'f' || t === 'false') return false;
  throw new PgTextError(`not a boolean: ${JSON.stringify(t)}`);
}

export function parseInt32(t: string): number {
  if (!/^-?\d+$/.test(t)) throw new PgTextError(`not an integer: ${JSON.stringify(t)}`);
  return Number(t);
}

export function parseInt64(t: string): bigint {
  if (!/^-?\d+$/.test(t)) throw new PgTextError(`not an integer: ${JSON.stringify(t)}`);
  return BigInt(t);
}

/** float8 text (shortest round-trip form, `NaN`, `Infinity`, `-Infinity`). */
export function parseFloat8(t: string): number {
  const n = Number(t);
  if (Number.isNaN(n) && t !== 'NaN') throw new PgTextError(`not a number: ${JSON.stringify(t)}`);
  return n;
}

export function parseFloat4(t: string): number {
  return Math.fround(parseFloat8(t));
}

/**
 * numeric text → unscaled bigint at `scale` (exact); `NaN`/`Infinity` give undefined (no
 * decimal can hold them). Digits beyond `scale` are refused rather than rounded: a column's
 * declared scale bounds them, so they only appear when the mapping is wrong.
 */
export function parseNumericUnscaled(t: string, scale: number): bigint | undefined {
  if (t === 'NaN' || t === 'Infinity' || t === '-Infinity') return undefined;
  const m = /^(-)?(\d*)(?:\.(\d*))?$/.exec(t);
  if (!m || (m[2] === '' && (m[3] ?? '') === ''))
    throw new PgTextError(`not a numeric: ${JSON.stringify(t)}`);
  let frac = m[3] ?? '';
  if (frac.length > scale) {
    if (/[1-9]/.test(frac.slice(scale)))
      throw new PgTextError(`numeric ${t} has more than ${scale} digits after the decimal point`);
    frac = frac.slice(0, scale);
  }
  const digits = `${m[2]}${frac.padEnd(scale, '0')}`;
  const v = BigInt(digits === '' ? '0' : digits);
  return m[1] ? -v : v;
}

/** bytea in hex (`\x0a0b`) or escape (`a\000\\`) output. */
export function parseBytea(t: string): Uint8Array {
  if (t.startsWith('\\x')) {
    const hex = t.slice(2);
    if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex))
      throw new PgTextError('bytea hex text is malformed');
    const b = Buffer.from(hex, 'hex');
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  const out: number[] = [];
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c !== 92) {
      out.push(c & 0xff);
      continue;
    }
    if (t[i + 1] === '\\') {
      out.push(92);
      i++;
    } else {
      const oct = t.slice(i + 1, i + 4);
      if (!/^[0-3][0-7]{2}$/.test(oct)) throw new PgTextError('bytea escape text is malformed');
      out.push(Number.parseInt(oct, 8));
      i += 3;
    }
  }
  return Uint8Array.from(out);
}

function yearOf(y: string, bc: boolean): number {
  const n = Number(y);
  // 1 BC is year 0 in the proleptic Gregorian calendar ISO-8601 uses.
  return bc ? 1 - n : n;
}

/** date (`YYYY-MM-DD[ BC]`, `infinity`, `-infinity`) → days since 1970-01-01; infinities clamp to int range ends. */
export function parseDateText(t: string): number {
  if (t === 'infinity') return INT32_MAX;
  if (t === '-infinity') return INT32_MIN;
  const m = /^(\d{4,})-(\d{2})-(\d{2})( BC)?$/.exec(t);
  if (!m) throw new PgTextError(`not a date: ${JSON.stringify(t)}`);
  return daysFromCivil(yearOf(m[1], !!m[4]), Number(m[2]), Number(m[3]));
}

function fracMicros(f: string | undefined): number {
  return f ? Number(f.padEnd(6, '0').slice(0, 6)) : 0;
}

/** time (`HH:MM:SS[.ffffff]`, `24:00:00` allowed) → microseconds since midnight. */
export function parseTimeText(t: string): bigint {
  const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(t);
  if (!m) throw new PgTextError(`not a time: ${JSON.stringify(t)}`);
  const s = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
  return BigInt(s) * 1_000_000n + BigInt(fracMicros(m[4]));
}

const TS_RE =
  /^(\d{4,})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?)?( BC)?$/;

/**
 * timestamp / timestamptz (`YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM[:SS]]][ BC]`, `infinity`,
 * `-infinity`) → microseconds since the epoch, UTC for values with an offset. Infinities clamp to
 * the int64 range ends.
 */
export function parseTimestampText(t: string): bigint {
  if (t === 'infinity') return INT64_MAX;
  if (t === '-infinity') return INT64_MIN;
  const m = TS_RE.exec(t);
  if (!m) throw new PgTextError(`not a timestamp: ${JSON.stringify(t)}`);
  const days = daysFromCivil(yearOf(m[1], !!m[12]), Number(m[2]), Number(m[3]));
  let secs = Number(m[4]) * 3600 + Number(m[5]) * 60 + Number(m[6]);
  if (m[8]) {
    const off = Number(m[9]) * 3600 + Number(m[10] ?? '0') * 60 + Number(m[11] ?? '0');
    secs -= m[8] === '-' ? -off : off;
  }
  return BigInt(days) * MICROS_PER_DAY + BigInt(secs) * 1_000_000n + BigInt(fracMicros(m[7]));
}

// ---- arrays and composites -------------------------------------------------------------------

/** An array literal's elements: text, null, or a nested array (multi-dimensional values). */
export type PgArrayItem = string | null | PgArrayItem[];

/**
 * Parses an array literal (`{1,2,NULL}`, `{"a b","c\"d"}`, `[0:1]={x,y}`, `{{1,2},{3,4}}`).
 * `delim` is the element type's delimiter (`,` for all but a few geometric types).
 */
export function parseArrayLiteral(t: string, delim = ','): PgArrayItem[] {
  let i = 0;
  if (t[0] === '[') {
    const eq = t.indexOf('=');
    if (eq < 0) throw new PgTextError('array literal with dimensions but no "="');
    i = eq + 1;
  }
  const parseLevel = (): PgArrayItem[] => {
    if (t[i] !== '{') throw new PgTextError(`array literal: expected "{" at ${i}`);
    i++;
    const out: PgArrayItem[] = [];
    if (t[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      while (t[i] === ' ') i++;
      if (t[i] === '{') out.push(parseLevel());
      else if (t[i] === '"') {
        i++;
        let s = '';
        while (i < t.length && t[i] !== '"') {
          if (t[i] === '\\') i++;
          s += t[i++];
        }
        if (t[i] !== '"') throw new PgTextError('array literal: unterminated quoted element');
        i++;
        out.push(s);
      } else {
        let s = '';
        let escaped = false;
        while (i < t.length && t[i] !== delim && t[i] !== '}') {
          if (t[i] === '\\') {
            escaped = true;
            i++;
          }
          s += t[i++];
        }
        s = s.trim();
        out.push(!escaped && s.toUpperCase() === 'NULL' ? null : s);
      }
      while (t[i] === ' ') i++;
      if (t[i] === delim) {
        i++;
        continue;
      }
      if (t[i] === '}') {
        i++;
        return out;
      }
      throw new PgTextError(`array literal: unexpected ${JSON.stringify(t[i] ?? 'end')} at ${i}`);
    }
  };
  const items = parseLevel();
  if (i !== t.length) throw new PgTextError('array literal: trailing text');
  return items;
}

/** Elements of a (possibly multi-dimensional) array literal in row-major order. */
export function flattenArray(items: PgArrayItem[]): (string | null)[] {
  if (!items.some(Array.isArray)) return items as (string | null)[];
  const out: (string | null)[] = [];
  const walk = (xs: PgArrayItem[]): void => {
    for (const x of xs) {
      if (Array.isArray(x)) walk(x);
      else out.push(x);
    }
  };
  walk(items);
  return out;
}

/** Parses a composite (row) literal `(1,"a b",,"x""y")` into field texts; an empty field is NULL. */
export function parseRecordLiteral(t: string): (string | null)[] {
  if (t[0] !== '(' || t[t.length - 1] !== ')') throw new PgTextError('record literal: expected (...)');
  const out: (string | null)[] = [];
  let i = 1;
  const end = t.length - 1;
  if (end === 1) return out;
  for (;;) {
    if (i >= end || t[i] === ',') {
      out.push(null);
    } else {
      let s = '';
      while (i < end && t[i] !== ',') {
        if (t[i] === '"') {
          i++;
          for (;;) {
            if (i >= end) throw new PgTextError('record literal: unterminated quoted field');
            if (t[i] === '"') {
              if (t[i + 1] === '"') {
                s += '"';
                i += 2;
                continue;
              }
              i++;
              break;
            }
            if (t[i] === '\\') i++;
            s += t[i++];
          }
        } else {
          if (t[i] === '\\') i++;
          s += t[i++];
        }
      }
      out.push(s);
    }
    if (i >= end) break;
    i++; // the comma
    if (i >= end) {
      out.push(null);
      break;
    }
  }
  return out;
}
