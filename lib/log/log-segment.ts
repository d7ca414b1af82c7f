/**
 * Log segment files and their records. A segment is named by the LSN of its first record; its
 * records carry consecutive LSNs.
 *
 * Two record framings exist, told apart by the file's extension (a name cannot be flipped by a
 * bad disk, a magic number can):
 * - `NNNN.seg` (written now): [u32 length][u32 crc32(lsn+payload)][u64 lsn][u32 crc32(bytes 0..16)][payload].
 *   The header has its own checksum, so a damaged length field is corruption, not a torn tail.
 * - `NNNN.log` (written before the header checksum): [u32 length][u32 crc32(lsn+payload)][u64 lsn][payload].
 *
 * {@link scanSegment} reads records in order and, at the first one that does not check out,
 * decides what it is: a **torn tail** (the last segment ends in a record a crash cut short —
 * it was never acknowledged and may be dropped) or **damage** (any other bad record, above all
 * one with intact records after it — the table must not open silently short).
 */
import { crc32 } from 'node:zlib';
import { asLsn, type Lsn, lsnAfter, lsnBefore } from '../lsn.ts';
import type { LogEntry } from './durable-log.ts';

export type SegmentFormat = 'seg' | 'log';

const V1_HEADER = 16;
const V2_HEADER = 20;

export interface SegmentName {
  firstLsn: Lsn;
  format: SegmentFormat;
}

export function segmentFileName(firstLsn: Lsn, format: SegmentFormat = 'seg'): string {
  return `${firstLsn.toString().padStart(20, '0')}.${format}`;
}

export function parseSegmentFileName(name: string): SegmentName | undefined {
  const m = /^(\d{20})\.(seg|log)$/.exec(name);
  return m ? { firstLsn: asLsn(BigInt(m[1])), format: m[2] as SegmentFormat } : undefined;
}

function headerBytes(format: SegmentFormat): number {
  return format === 'seg' ? V2_HEADER : V1_HEADER;
}

/**
 * A record's `.seg` header: written before its payload, so the payload is written as it is
 * (no copy of it into a framed buffer).
 */
export function frameHeader(lsn: Lsn, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(V2_HEADER);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, payload.length, true);
  dv.setBigUint64(8, lsn, true);
  dv.setUint32(4, crc32(payload, crc32(out.subarray(8, 16))), true);
  dv.setUint32(16, crc32(out.subarray(0, 16)), true);
  return out;
}

/** One record, framed for a `.seg` file (its header, then its payload). */
export function frameRecord(lsn: Lsn, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(V2_HEADER + payload.length);
  out.set(frameHeader(lsn, payload));
  out.set(payload, V2_HEADER);
  return out;
}

/** One record, framed for a `.log` file (kept for tests of old segments). */
export function frameRecordV1(lsn: Lsn, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(V1_HEADER + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, payload.length, true);
  dv.setBigUint64(8, lsn, true);
  out.set(payload, V1_HEADER);
  dv.setUint32(4, crc32(out.subarray(8)), true);
  return out;
}

type Check = { ok: true; lsn: Lsn; end: number } | { ok: false; reason: string; pastEnd: boolean };

/** Checks the record at `at` (its framing and checksums; not its LSN's place in the sequence). */
function checkRecord(buf: Uint8Array, dv: DataView, at: number, format: SegmentFormat): Check {
  const header = headerBytes(format);
  if (at + header > buf.length) return { ok: false, reason: 'partial record header', pastEnd: true };
  const len = dv.getUint32(at, true);
  const lsn = asLsn(dv.getBigUint64(at + 8, true));
  if (format === 'seg' && crc32(buf.subarray(at, at + 16)) !== dv.getUint32(at + 16, true))
    return { ok: false, reason: 'record header checksum mismatch', pastEnd: false };
  const end = at + header + len;
  if (end > buf.length)
    return { ok: false, reason: 'record extends past the end of the segment', pastEnd: true };
  const crc =
    format === 'seg'
      ? crc32(buf.subarray(at + header, end), crc32(buf.subarray(at + 8, at + 16)))
      : crc32(buf.subarray(at + 8, end));
  if (crc !== dv.getUint32(at + 4, true))
    return { ok: false, reason: 'record checksum mismatch', pastEnd: false };
  return { ok: true, lsn, end };
}

/** Where the next intact record after `from` starts, if any (LSN at least `minLsn`). */
function findNextRecord(
  buf: Uint8Array,
  dv: DataView,
  from: number,
  minLsn: Lsn,
  format: SegmentFormat,
): { offset: number; lsn: Lsn } | undefined {
  const header = headerBytes(format);
  const maxLsn = minLsn + 0x1_0000_0000n;
  for (let p = from; p + header <= buf.length; p++) {
    const len = dv.getUint32(p, true);
    if (p + header + len > buf.length) continue;
    const lsn = asLsn(dv.getBigUint64(p + 8, true));
    if (lsn < minLsn || lsn > maxLsn) continue;
    const c = checkRecord(buf, dv, p, format);
    if (c.ok) return { offset: p, lsn };
  }
  return undefined;
}

function allZero(buf: Uint8Array, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

export interface SegmentProblem {
  /** Byte offset of the first bad record. */
  offset: number;
  /** The LSN the bad record should have carried. */
  expectedLsn: Lsn;
  reason: string;
  /** `torn`: a crash cut the last record short (never acknowledged); `damaged`: anything else. */
  kind: 'torn' | 'damaged';
  /** The next intact record after the bad bytes, if any. */
  resume?: { offset: number; lsn: Lsn };
}

export interface SegmentScan {
  /** Read back from disk: payloads only (`decoded` is what an appender held in memory). */
  entries: LogEntry<never>[];
  /** Bytes of intact records from the start (where a torn tail is cut). */
  validBytes: number;
  /** The LSN after the last intact record of the prefix. */
  nextLsn: Lsn;
  problem?: SegmentProblem;
}

/**
 * Reads a segment's records. `skips` are LSN ranges a repair deliberately gave up (they may be
 * missing from the sequence); `isLast` says whether this is the table's newest segment (only
 * there can a torn tail be).
 */
export function scanSegment(
  buf: Uint8Array,
  name: SegmentName,
  isLast: boolean,
  skips: readonly LsnRange[] = [],
): SegmentScan {
  const { format } = name;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const entries: LogEntry<never>[] = [];
  let at = 0;
  let expected = name.firstLsn;
  const header = headerBytes(format);
  while (at < buf.length) {
    const c = checkRecord(buf, dv, at, format);
    if (c.ok && (c.lsn === expected || skipped(skips, expected, c.lsn))) {
      entries.push({ lsn: c.lsn, payload: buf.slice(at + header, c.end) });
      at = c.end;
      expected = lsnAfter(c.lsn);
      continue;
    }
    const reason = c.ok ? `record carries LSN ${c.lsn} where ${expected} was expected` : c.reason;
    const resume = c.ok ? { offset: at, lsn: c.lsn } : findNextRecord(buf, dv, at + 1, expected, format);
    // Only a crash mid-write is a torn tail, and only at the end of the newest segment with
    // nothing intact after it: a short header, a checked header whose record runs past the end,
    // or a tail the file system left as zeros. A `.log` header has no checksum, so there any
    // bad last record counts as torn (as it always did).
    const torn = !c.ok && !resume && isLast && (format === 'log' || c.pastEnd || allZero(buf, at));
    return {
      entries,
      validBytes: at,
      nextLsn: expected,
      problem: { offset: at, expectedLsn: expected, reason, kind: torn ? 'torn' : 'damaged', resume },
    };
  }
  return { entries, validBytes: at, nextLsn: expected };
}

/** Every intact record of a damaged segment, resynchronizing past bad bytes (for repair). */
export function salvageSegment(
  buf: Uint8Array,
  name: SegmentName,
): { entries: LogEntry<never>[]; badRanges: { offset: number; bytes: number }[] } {
  const { format } = name;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const header = headerBytes(format);
  const entries: LogEntry<never>[] = [];
  const badRanges: { offset: number; bytes: number }[] = [];
  let at = 0;
  let lastLsn = lsnBefore(name.firstLsn);
  while (at < buf.length) {
    const c = checkRecord(buf, dv, at, format);
    if (c.ok && c.lsn > lastLsn) {
      entries.push({ lsn: c.lsn, payload: buf.slice(at + header, c.end) });
      lastLsn = c.lsn;
      at = c.end;
      continue;
    }
    const next = findNextRecord(buf, dv, at + 1, lsnAfter(lastLsn), format);
    const to = next?.offset ?? buf.length;
    badRanges.push({ offset: at, bytes: to - at });
    at = to;
  }
  return { entries, badRanges };
}

export interface LsnRange {
  /** First LSN given up, inclusive. */
  from: Lsn;
  /** Last LSN given up, inclusive. */
  to: Lsn;
}

/** Whether jumping from the expected LSN to `got` crosses only LSNs a repair gave up. */
function skipped(skips: readonly LsnRange[], expected: Lsn, got: Lsn): boolean {
  if (got <= expected) return false;
  return skips.some((s) => s.from <= expected && s.to >= got - 1n);
}

export { headerBytes as recordHeaderBytes };
