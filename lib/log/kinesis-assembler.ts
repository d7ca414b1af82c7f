/**
 * One table's view of its shard: other tables' records and duplicates skipped, parts
 * reassembled, the rest turned into log entries.
 *
 * Exactly-once delivery. PutRecord is not idempotent: a request whose response was lost after
 * it succeeded is retried and lands twice. Every record carries the producer's transaction id
 * (`txn`), and the assembler skips a record (or part) whose `txn` it has already seen within
 * `windowMs` (by the records' arrival time). Malformed records (not JSON, no table, bad parts)
 * become entries with the raw record bytes as payload (attributed to the `table` member, or to
 * the partition key when there is none), so the writer's decoder rejects them into the
 * dead-letter location.
 */
import type { Lsn } from '../lsn.ts';
import type { LogEntry } from './durable-log.ts';
import { assemble, concat, opsArrayOf, unbrotli, unwrapRecord } from './kinesis-records.ts';
import { deaggregate } from './kpl-records.ts';

interface PendingTxn {
  parts: number;
  /** Binary parts (`bin`): the payload is their bytes, concatenated. */
  bin: boolean;
  /** Those bytes are compressed (`"z":"br"`). */
  z: boolean;
  got: (Uint8Array | undefined)[];
  count: number;
  firstArrival: number;
}

export interface ConsumedRecord {
  seq: Lsn;
  data: Uint8Array;
  partitionKey?: string;
  /** ApproximateArrivalTimestamp in ms. */
  arrival: number;
}

/**
 * One table's view of its shard: skips other tables' records and duplicates, reassembles parts,
 * and turns the rest into log entries (exported for tests).
 */
export class TableRecordAssembler {
  private readonly seen = new Map<string, number>();
  private readonly pending = new Map<string, PendingTxn>();
  private evictedAt = 0;
  /** Incomplete transactions dropped (a producer that stopped half-way; never acknowledged). */
  abandoned = 0;
  duplicates = 0;

  constructor(
    readonly table: string,
    readonly windowMs: number,
  ) {}

  /** The entry this record completes (with its transaction id), or undefined. */
  accept(r: ConsumedRecord): { entry: LogEntry; txn?: string } | undefined {
    const u = unwrapRecord(r.data, r.partitionKey);
    if (u.table !== this.table) return undefined;
    this.evict(r.arrival);
    if (u.kind === 'malformed') return { entry: { lsn: r.seq, payload: r.data } };
    if (u.kind === 'txn') {
      if (u.txn !== undefined) {
        if (this.seen.has(u.txn)) {
          this.duplicates++;
          return undefined;
        }
        this.seen.set(u.txn, r.arrival);
      }
      return { entry: { lsn: r.seq, payload: u.payload }, txn: u.txn };
    }
    if (this.seen.has(u.txn)) {
      this.duplicates++;
      return undefined;
    }
    let p = this.pending.get(u.txn);
    if (!p) {
      p = {
        parts: u.parts,
        bin: u.bin === true,
        z: u.z === 'br',
        got: new Array(u.parts),
        count: 0,
        firstArrival: r.arrival,
      };
      this.pending.set(u.txn, p);
    }
    if (p.parts !== u.parts || p.bin !== (u.bin === true) || p.z !== (u.z === 'br'))
      return { entry: { lsn: r.seq, payload: r.data } };
    if (p.got[u.part] !== undefined) {
      this.duplicates++;
      return undefined;
    }
    p.got[u.part] = u.ops;
    p.count++;
    if (p.count < p.parts) return undefined;
    this.pending.delete(u.txn);
    this.seen.set(u.txn, r.arrival);
    const joined = p.bin ? concat(p.got as Uint8Array[]) : assemble(p.got as Uint8Array[]);
    let payload = joined;
    if (p.z) {
      try {
        payload = unbrotli(joined);
      } catch {
        return { entry: { lsn: r.seq, payload: r.data } };
      }
    }
    return { entry: { lsn: r.seq, payload }, txn: u.txn };
  }

  /**
   * The entries a record gives: {@link accept}'s, or for a KPL-aggregated record
   * (kpl-records.ts) its user records of this table as one transaction at the record's sequence
   * number — their operations in order, duplicates (by `txn`) dropped — followed by any that
   * are not a whole JSON transaction, as they are (the writer dead-letters them). One LSN per
   * Kinesis record: the resume point stays a real sequence number.
   */
  acceptAll(r: ConsumedRecord): { entry: LogEntry; txn?: string }[] {
    const users = deaggregate(r.data);
    if (!users) {
      const one = this.accept(r);
      return one ? [one] : [];
    }
    this.evict(r.arrival);
    const ops: Uint8Array[] = [];
    const bad: { entry: LogEntry }[] = [];
    for (const user of users) {
      const u = unwrapRecord(user.data, user.partitionKey);
      if (u.table !== this.table) continue;
      if (u.kind === 'txn' && u.txn !== undefined && this.seen.has(u.txn)) {
        this.duplicates++;
        continue;
      }
      const inner = u.kind === 'txn' ? opsArrayOf(u.payload) : undefined;
      if (!inner) {
        bad.push({ entry: { lsn: r.seq, payload: user.data } });
        continue;
      }
      if (u.kind === 'txn' && u.txn !== undefined) this.seen.set(u.txn, r.arrival);
      ops.push(inner);
    }
    this.aggregated++;
    return [...(ops.length > 0 ? [{ entry: { lsn: r.seq, payload: assemble(ops) } }] : []), ...bad];
  }

  /** KPL-aggregated records read. */
  aggregated = 0;

  private evict(now: number): void {
    if (now - this.evictedAt < 1000) return;
    this.evictedAt = now;
    const cutoff = now - this.windowMs;
    for (const [txn, at] of this.seen) {
      if (at >= cutoff) break;
      this.seen.delete(txn);
    }
    for (const [txn, p] of this.pending) {
      if (p.firstArrival < cutoff) {
        this.pending.delete(txn);
        this.abandoned++;
      }
    }
  }
}
