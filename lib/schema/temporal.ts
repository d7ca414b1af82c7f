/**
 * Exact calendar arithmetic for Iceberg's temporal types at microsecond precision
 * (JavaScript's Date stops at milliseconds, so it is not used for values).
 */

const MICROS_PER_DAY = 86_400_000_000n;

/** Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's days_from_civil). */
export function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

export function civilFromDays(z: number): [number, number, number] {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const y = yoe + era * 400;
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return [m <= 2 ? y + 1 : y, m, d];
}

/** Days per month of a common year, 1-based (index 0 unused). */
const MONTH_DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return MONTH_DAYS[m];
}

const DATE_RE = /^([+-]?\d{4,6})-(\d{2})-(\d{2})$/;
const TIME_RE = /^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/;
const TS_RE =
  /^([+-]?\d{4,6})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Parses `YYYY-MM-DD`; returns days since epoch or an error message. */
export function parseDate(s: string): number | string {
  const m = DATE_RE.exec(s);
  if (!m) return `"${s}" is not a date (YYYY-MM-DD)`;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return `"${s}" is not a valid calendar date`;
  return daysFromCivil(y, mo, d);
}

function fractionMicros(frac: string | undefined): bigint | string {
  if (!frac) return 0n;
  if (frac.length > 6 && /[1-9]/.test(frac.slice(6))) return 'has more precision than microseconds';
  return BigInt(frac.slice(0, 6).padEnd(6, '0'));
}

/** Parses `HH:MM[:SS[.ffffff]]`; returns microseconds since midnight or an error message. */
export function parseTime(s: string): bigint | string {
  const m = TIME_RE.exec(s);
  if (!m) return `"${s}" is not a time (HH:MM:SS[.ffffff])`;
  const h = Number(m[1]);
  const mi = Number(m[2]);
  const sec = Number(m[3] ?? '0');
  if (h > 23 || mi > 59 || sec > 59) return `"${s}" is not a valid time of day`;
  const frac = fractionMicros(m[4]);
  if (typeof frac === 'string') return `"${s}" ${frac}`;
  return BigInt((h * 3600 + mi * 60 + sec) * 1_000_000) + frac;
}

function digit(s: string, i: number): number {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : -1000;
}

function two(s: string, i: number): number {
  return digit(s, i) * 10 + digit(s, i + 1);
}

/** Whether fields read by the fast timestamp parsers (negative when not digits) make a real time. */
function validDateTime(y: number, mo: number, d: number, h: number, mi: number, sec: number): boolean {
  return (
    y >= 0 &&
    mo >= 1 &&
    mo <= 12 &&
    d >= 1 &&
    d <= daysInMonth(y, mo) &&
    h >= 0 &&
    h <= 23 &&
    mi >= 0 &&
    mi <= 59 &&
    sec >= 0 &&
    sec <= 59
  );
}

/**
 * The common shape `YYYY-MM-DDTHH:MM:SS[.f…]Z` (or `±HH:MM`) without regular expressions or
 * intermediate bigints; undefined when the text has another shape (the general parser decides).
 */
function fastTimestamp(s: string, withZone: boolean): bigint | undefined {
  const n = s.length;
  if (
    n < 19 ||
    s.charCodeAt(4) !== 45 ||
    s.charCodeAt(7) !== 45 ||
    s.charCodeAt(13) !== 58 ||
    s.charCodeAt(16) !== 58
  )
    return undefined;
  const t = s.charCodeAt(10);
  if (t !== 84 && t !== 32) return undefined;
  const y = two(s, 0) * 100 + two(s, 2);
  const mo = two(s, 5);
  const d = two(s, 8);
  const h = two(s, 11);
  const mi = two(s, 14);
  const sec = two(s, 17);
  if (!validDateTime(y, mo, d, h, mi, sec)) {
    return undefined;
  }
  let i = 19;
  let frac = 0;
  if (i < n && s.charCodeAt(i) === 46) {
    i++;
    let digits = 0;
    while (i < n && digit(s, i) >= 0) {
      if (digits < 6) frac = frac * 10 + digit(s, i);
      else if (digit(s, i) !== 0) return undefined;
      digits++;
      i++;
    }
    if (digits === 0 || digits > 9) return undefined;
    for (let k = digits; k < 6; k++) frac *= 10;
  }
  let offsetMinutes = 0;
  if (i === n) {
    if (withZone) return undefined;
  } else {
    if (!withZone) return undefined;
    const z = s.charCodeAt(i);
    if ((z === 90 || z === 122) && i + 1 === n) {
      // Z
    } else if ((z === 43 || z === 45) && i + 6 === n && s.charCodeAt(i + 3) === 58) {
      const oh = two(s, i + 1);
      const om = two(s, i + 4);
      if (oh < 0 || om < 0) return undefined;
      offsetMinutes = (z === 45 ? -1 : 1) * (oh * 60 + om);
    } else return undefined;
  }
  const seconds = daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offsetMinutes * 60;
  const micros = seconds * 1_000_000 + frac;
  return Number.isSafeInteger(micros) ? BigInt(micros) : BigInt(seconds) * 1_000_000n + BigInt(frac);
}

function byteDigit(b: Uint8Array, i: number): number {
  const c = b[i] - 48;
  return c >= 0 && c <= 9 ? c : -1000;
}

function byteTwo(b: Uint8Array, i: number): number {
  return byteDigit(b, i) * 10 + byteDigit(b, i + 1);
}

/**
 * {@link fastTimestamp} over UTF-8 bytes `b[start, end)` (a request's text, not yet a string),
 * as a number of microseconds; NaN when the text has another shape or the value is beyond 2^53
 * (the caller then decodes the string the general way). It accepts exactly what
 * `fastTimestamp` accepts: only ASCII passes its checks, so bytes and characters agree.
 */
export function fastTimestampMicros(b: Uint8Array, start: number, end: number, withZone: boolean): number {
  const n = end - start;
  const s = start;
  if (n < 19 || b[s + 4] !== 45 || b[s + 7] !== 45 || b[s + 13] !== 58 || b[s + 16] !== 58) return Number.NaN;
  const t = b[s + 10];
  if (t !== 84 && t !== 32) return Number.NaN;
  const y = byteTwo(b, s) * 100 + byteTwo(b, s + 2);
  const mo = byteTwo(b, s + 5);
  const d = byteTwo(b, s + 8);
  const h = byteTwo(b, s + 11);
  const mi = byteTwo(b, s + 14);
  const sec = byteTwo(b, s + 17);
  if (!validDateTime(y, mo, d, h, mi, sec)) {
    return Number.NaN;
  }
  let i = s + 19;
  let frac = 0;
  if (i < end && b[i] === 46) {
    i++;
    let digits = 0;
    for (; i < end; i++) {
      const digit = byteDigit(b, i);
      if (digit < 0) break;
      if (digits < 6) frac = frac * 10 + digit;
      else if (digit !== 0) return Number.NaN;
      digits++;
    }
    if (digits === 0 || digits > 9) return Number.NaN;
    for (let k = digits; k < 6; k++) frac *= 10;
  }
  let offsetMinutes = 0;
  if (i === end) {
    if (withZone) return Number.NaN;
  } else {
    if (!withZone) return Number.NaN;
    const z = b[i];
    if ((z === 90 || z === 122) && i + 1 === end) {
      // Z
    } else if ((z === 43 || z === 45) && i + 6 === end && b[i + 3] === 58) {
      const oh = byteTwo(b, i + 1);
      const om = byteTwo(b, i + 4);
      if (oh < 0 || om < 0) return Number.NaN;
      offsetMinutes = (z === 45 ? -1 : 1) * (oh * 60 + om);
    } else return Number.NaN;
  }
  const seconds = daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offsetMinutes * 60;
  const micros = seconds * 1_000_000 + frac;
  return Number.isSafeInteger(micros) ? micros : Number.NaN;
}

/**
 * Parses an ISO-8601 timestamp to microseconds since the epoch. With `withZone`, an offset or Z
 * is required and the result is UTC; without, an offset is refused (a `timestamp` has no zone).
 */
export function parseTimestamp(s: string, withZone: boolean): bigint | string {
  const fast = fastTimestamp(s, withZone);
  if (fast !== undefined) return fast;
  const m = TS_RE.exec(s);
  if (!m) return `"${s}" is not an ISO-8601 timestamp`;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return `"${s}" is not a valid calendar date`;
  const h = Number(m[4] ?? '0');
  const mi = Number(m[5] ?? '0');
  const sec = Number(m[6] ?? '0');
  if (h > 23 || mi > 59 || sec > 59) return `"${s}" is not a valid time of day`;
  const frac = fractionMicros(m[7]);
  if (typeof frac === 'string') return `"${s}" ${frac}`;
  const zone = m[8];
  let offsetMinutes = 0;
  if (zone && zone !== 'Z' && zone !== 'z') {
    if (!withZone) return `"${s}" has a UTC offset but the column is timestamp without time zone`;
    const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!;
    offsetMinutes = (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3] ?? '0'));
  } else if (zone && !withZone) {
    return `"${s}" has a UTC offset but the column is timestamp without time zone`;
  } else if (!zone && withZone) {
    return `"${s}" has no UTC offset; timestamptz needs one (e.g. "Z" or "+02:00")`;
  }
  const days = BigInt(daysFromCivil(y, mo, d));
  const secs = BigInt(h * 3600 + mi * 60 + sec - offsetMinutes * 60);
  return days * MICROS_PER_DAY + secs * 1_000_000n + frac;
}

function pad(n: number, w: number): string {
  const s = String(Math.abs(n)).padStart(w, '0');
  return n < 0 ? `-${s}` : s;
}

export function formatDate(days: number): string {
  const [y, m, d] = civilFromDays(days);
  return `${y > 9999 ? `+${y}` : pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`;
}

export function formatTime(micros: bigint): string {
  const total = Number(micros / 1_000_000n);
  const frac = Number(micros % 1_000_000n);
  const h = Math.floor(total / 3600);
  const mi = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return `${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}.${pad(frac, 6)}`;
}

export function formatTimestamp(micros: bigint, withZone: boolean): string {
  let days = micros / MICROS_PER_DAY;
  let rem = micros % MICROS_PER_DAY;
  if (rem < 0n) {
    rem += MICROS_PER_DAY;
    days -= 1n;
  }
  return `${formatDate(Number(days))}T${formatTime(rem)}${withZone ? 'Z' : ''}`;
}
