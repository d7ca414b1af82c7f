/**
 * Log sequence numbers. An LSN orders a table's transactions; a read at LSN L sees exactly the
 * transactions with LSN ≤ L. Locally the log counts 1, 2, 3…; on Kinesis the LSN is the record's
 * sequence number and on Postgres the WAL position, both 64 bits or more, so LSNs are bigints.
 * In JSON an LSN is a number while it fits in 2^53 and a decimal string beyond.
 */
export type Lsn = bigint;

export const ZERO_LSN: Lsn = 0n;

/** An LSN that is not a non-negative integer (a client's `minLsn`, a record's field). */
export class InvalidLsnError extends RangeError {
  readonly code = 'invalid_lsn';
}

export function lsnToJson(lsn: Lsn): number | string {
  return lsn <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(lsn) : lsn.toString();
}

/** Parses an LSN from JSON or a query string; undefined when absent, throws on garbage. */
export function parseLsn(v: unknown): Lsn | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^\d{1,80}$/.test(v)) return BigInt(v);
  throw new InvalidLsnError(`invalid LSN ${JSON.stringify(String(v))}: expected a non-negative integer`);
}

export function maxLsn(a: Lsn, b: Lsn): Lsn {
  return a > b ? a : b;
}
