/**
 * Log sequence numbers. An LSN orders a table's transactions; a read at LSN L sees exactly the
 * transactions with LSN ≤ L. Locally the log counts 1, 2, 3…; on Kinesis the LSN is the record's
 * sequence number and on Postgres the WAL position, both 64 bits or more, so LSNs are bigints.
 * In JSON an LSN is a number while it fits in 2^53 and a decimal string beyond; in the catalog
 * and in file names it is a decimal string ({@link lsnToText}, {@link lsnFromText}).
 *
 * `Lsn` is branded: a plain bigint (a row count, a position, a sequence number not yet taken
 * as an LSN) does not pass for one. Values become LSNs at the few places that make them: the
 * parsers here, a log that numbers its entries, a source that reads positions.
 */
declare const lsnBrand: unique symbol;
export type Lsn = bigint & { readonly [lsnBrand]: true };

export const ZERO_LSN = 0n as Lsn;

/** An LSN that is not a non-negative integer (a client's `minLsn`, a record's field). */
export class InvalidLsnError extends RangeError {
  readonly code = 'invalid_lsn';
}

/** Takes a bigint as an LSN: a log's counter, a Kinesis sequence number, a WAL position. */
export function asLsn(v: bigint): Lsn {
  return v as Lsn;
}

/** The LSN `n` after `lsn` (the next entry a counting log gives). */
export function lsnAfter(lsn: Lsn, n = 1n): Lsn {
  return (lsn + n) as Lsn;
}

/** The LSN just before `lsn` (never below zero). */
export function lsnBefore(lsn: Lsn): Lsn {
  return (lsn > 0n ? lsn - 1n : 0n) as Lsn;
}

export function lsnToJson(lsn: Lsn): number | string {
  return lsn <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(lsn) : lsn.toString();
}

/** An LSN as the catalog and file names keep it: a decimal string. */
export function lsnToText(lsn: Lsn): string {
  return lsn.toString();
}

const LSN_TEXT = /^\d{1,80}$/;

/** An LSN from its decimal text (a catalog pointer, a checkpoint, a file name); throws on garbage. */
export function lsnFromText(s: string): Lsn {
  if (!LSN_TEXT.test(s))
    throw new InvalidLsnError(`invalid LSN ${JSON.stringify(s)}: expected a non-negative integer`);
  return BigInt(s) as Lsn;
}

/** Parses an LSN from JSON or a query string; undefined when absent, throws on garbage. */
export function parseLsn(v: unknown): Lsn | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'bigint' && v >= 0n) return v as Lsn;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v) as Lsn;
  if (typeof v === 'string' && LSN_TEXT.test(v)) return BigInt(v) as Lsn;
  throw new InvalidLsnError(`invalid LSN ${JSON.stringify(String(v))}: expected a non-negative integer`);
}

export function maxLsn(a: Lsn, b: Lsn): Lsn {
  return a > b ? a : b;
}

export function minLsn(a: Lsn, b: Lsn): Lsn {
  return a < b ? a : b;
}

/** An LSN a peer answered in JSON (a number or a decimal string); throws when absent or garbage. */
export function lsnFromJson(v: unknown): Lsn {
  const lsn = parseLsn(v);
  if (lsn === undefined) throw new InvalidLsnError('missing LSN: expected a non-negative integer');
  return lsn;
}
