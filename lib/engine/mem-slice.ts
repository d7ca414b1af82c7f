/**
 * The MemSlice: a table's most recent rows, in columns, with a key → row map and a deleted flag
 * per row. Snapshots seal the rows added since the previous snapshot into a *tail segment*
 * that becomes a small Parquet tail file; later deletes of those rows become deletion-vector
 * bits on that tail file. When the slice grows past its threshold it is frozen and flushed to a
 * data file, while a fresh slice takes new rows.
 */

import { type ColumnBuffer, columnBufferFor } from '../columns/column-buffer.ts';
import type { Lsn } from '../lsn.ts';
import type { NestedField } from '../schema/iceberg-type.ts';
import { KeyHasher } from '../schema/key-hash.ts';
import type { Value } from '../schema/values.ts';
import type { OpBatch } from '../txn/op-batch.ts';
import { KeyTable } from './key-table.ts';

/** Rows [start, end) of a slice, published as one tail file. */
export interface TailSegment {
  start: number;
  end: number;
  /** Object-store key of the tail file, once a snapshot has assigned one. */
  key?: string;
  sizeBytes?: number;
  /** Deleted rows in the segment, counted as they happen. */
  deletedCount: number;
  /** A delete happened since the segment's deletion vector was last written. */
  dvDirty: boolean;
  /** The deletion vector blob a published snapshot points to. */
  dvRef?: DeletionVectorRef;
}

export interface DeletionVectorRef {
  key: string;
  offset: number;
  length: number;
  cardinality: number;
}

let sliceSeq = 0;
/** For {@link MemSlice.lookupKey} (cold paths; one loop thread, and its result is read at once). */
const hasher = new KeyHasher();

export class MemSlice {
  readonly id = ++sliceSeq;
  columns: ColumnBuffer[];
  rowCount = 0;
  liveCount = 0;
  private deleted: Uint8Array;
  /**
   * Each row's key hash (primary-key tables), kept so flushing and deleting never hash again:
   * a row's key is its hash, as in the file index (no key strings are kept).
   */
  private rowHi: Uint32Array;
  private rowLo: Uint32Array;
  private readonly keys: KeyTable | undefined;
  readonly segments: TailSegment[] = [];
  /** Rows [0, sealedRows) belong to segments. */
  sealedRows = 0;
  /** Set once the slice is frozen for flushing: the LSN it holds rows up to. */
  frozenAt: Lsn | undefined;
  /** Deletes that happen while a frozen slice is being flushed, to carry over to its data file. */
  readonly deletesAfterFreeze: { row: number; lsn: Lsn }[] = [];
  private fixedBytes = 0;

  /**
   * `expectedRows` sizes the columns and the key table up front (the table passes the size of
   * its previous slice), so a filling slice does not copy and rehash itself as it doubles.
   */
  constructor(
    readonly fields: NestedField[],
    hasKey: boolean,
    expectedRows = 1024,
  ) {
    const rows = Math.max(1024, expectedRows);
    // In shared memory: flushes and snapshots hand their rows to a worker without a copy.
    this.columns = fields.map((f) => columnBufferFor(f.type, rows, true));
    this.deleted = new Uint8Array(rows);
    this.rowHi = new Uint32Array(rows);
    this.rowLo = new Uint32Array(rows);
    this.keys = hasKey ? new KeyTable(Math.ceil((rows * 4) / 3) + 1) : undefined;
  }

  /** A primary-key table's slice (its rows have key hashes). */
  get keyed(): boolean {
    return this.keys !== undefined;
  }

  /**
   * Appends a row; returns its row number. The caller has removed any older row with the key.
   * `hi`/`lo` are the key's hash (schema/key-hash.ts), computed once by the caller (ignored
   * without a primary key).
   */
  append(values: Value[], hi = 0, lo = 0): number {
    for (let c = 0; c < this.columns.length; c++) this.columns[c].push(values[c]);
    return this.appended(hi, lo);
  }

  /**
   * A row whose values follow in {@link appendColumns}: its key is in the slice at once (a
   * later operation of the same batch finds and deletes it), its values come with its run's.
   */
  appendKeyOnly(hi = 0, lo = 0): number {
    return this.appended(hi, lo);
  }

  /** The values of operations [from, to) of a batch, for rows given by {@link appendKeyOnly}. */
  appendColumns(batch: OpBatch, from: number, to: number): void {
    const src = batch.columns;
    for (let c = 0; c < this.columns.length; c++) this.columns[c].pushRange(src[c], from, to);
  }

  /** Bookkeeping for the row just pushed to the columns. */
  private appended(hi: number, lo: number): number {
    const row = this.rowCount;
    if (row === this.deleted.length) {
      const next = new Uint8Array(this.deleted.length * 2);
      next.set(this.deleted);
      this.deleted = next;
      if (this.keys) {
        const h = new Uint32Array(next.length);
        h.set(this.rowHi);
        this.rowHi = h;
        const l = new Uint32Array(next.length);
        l.set(this.rowLo);
        this.rowLo = l;
      }
    }
    if (this.keys) {
      this.rowHi[row] = hi;
      this.rowLo[row] = lo;
      this.keys.set(hi, lo, row);
      // The hash words and the key table's slot (12 bytes at three-quarters load).
      this.fixedBytes += 24;
    }
    this.rowCount++;
    this.liveCount++;
    return row;
  }

  /** The live row with the key of this hash, or undefined. */
  lookup(hi: number, lo: number): number | undefined {
    if (!this.keys) return undefined;
    const r = this.keys.get(hi, lo);
    return r < 0 ? undefined : r;
  }

  /** Same, hashing the key here (cold paths). */
  lookupKey(key: string): number | undefined {
    const h = hasher.hash(key);
    return this.lookup(h.hi, h.lo);
  }

  /** A row's key hash, high word (primary-key tables). */
  hiOf(row: number): number {
    return this.rowHi[row];
  }

  /** A row's key hash, low word (primary-key tables). */
  loOf(row: number): number {
    return this.rowLo[row];
  }

  isDeleted(row: number): boolean {
    return this.deleted[row] === 1;
  }

  delete(row: number, lsn: Lsn): void {
    if (this.deleted[row] === 1) return;
    this.deleted[row] = 1;
    this.liveCount--;
    if (this.keys) this.keys.delete(this.rowHi[row], this.rowLo[row]);
    if (row < this.sealedRows) {
      const seg = this.segmentOf(row);
      seg.deletedCount++;
      seg.dvDirty = true;
    }
    if (this.frozenAt !== undefined) this.deletesAfterFreeze.push({ row, lsn });
  }

  private segmentOf(row: number): TailSegment {
    let a = 0;
    let b = this.segments.length - 1;
    while (a < b) {
      const m = (a + b + 1) >>> 1;
      if (this.segments[m].start <= row) a = m;
      else b = m - 1;
    }
    return this.segments[a];
  }

  /** Seals rows added since the last seal into a new tail segment (if any). */
  seal(): TailSegment | undefined {
    if (this.sealedRows === this.rowCount) return undefined;
    let deletedCount = 0;
    for (let r = this.sealedRows; r < this.rowCount; r++) deletedCount += this.deleted[r];
    const seg: TailSegment = {
      start: this.sealedRows,
      end: this.rowCount,
      deletedCount,
      dvDirty: deletedCount > 0,
    };
    this.segments.push(seg);
    this.sealedRows = this.rowCount;
    return seg;
  }

  /** Deleted positions within a segment, relative to its start. */
  segmentDeletes(seg: TailSegment): number[] {
    const out: number[] = [];
    for (let r = seg.start; r < seg.end; r++) if (this.deleted[r] === 1) out.push(r - seg.start);
    return out;
  }

  /** The key hashes of the given rows (for the index run of a flushed file). */
  hashesOf(rows: ArrayLike<number>): { his: Uint32Array; los: Uint32Array } {
    const his = new Uint32Array(rows.length);
    const los = new Uint32Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      his[i] = this.rowHi[rows[i]];
      los[i] = this.rowLo[rows[i]];
    }
    return { his, los };
  }

  /** Row numbers that are not deleted, in order. */
  liveRows(): Uint32Array {
    const out = new Uint32Array(this.liveCount);
    let n = 0;
    for (let r = 0; r < this.rowCount; r++) if (this.deleted[r] === 0) out[n++] = r;
    return out;
  }

  /** Approximate bytes held in memory (columns plus keys). */
  get byteSize(): number {
    let s = this.fixedBytes + this.rowCount;
    for (const c of this.columns) s += c.byteSize;
    return s;
  }

  /** Drops the column data once the rows are in a file (key hashes and deleted flags stay). */
  releaseColumns(): void {
    this.columns = [];
  }

  get(row: number): Value[] {
    return this.columns.map((c) => c.get(row));
  }
}
