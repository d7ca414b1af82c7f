/**
 * A transaction that arrives in pieces (Postgres streaming of in-progress transactions): its
 * rows collect in a private MemSlice that no snapshot sees; past the size threshold the slice
 * is flushed to a private Parquet file. At commit its deletes apply to the table and its rows
 * and files join it; at abort everything it wrote is discarded.
 */

import { ZERO_LSN } from '../lsn.ts';
import { rowMapper } from '../schema/evolve-values.ts';
import type { NestedField } from '../schema/iceberg-type.ts';
import { KeyHasher } from '../schema/key-hash.ts';
import type { TableSchema } from '../schema/table-schema.ts';
import type { FileId, ObjectKey } from '../store/object-keys.ts';
import type { DecodedOp } from '../txn/transaction.ts';
import type { FlushResult } from './flusher.ts';
import { MemSlice } from './mem-slice.ts';

/** A private slice that was frozen for flushing; `result` arrives when its file is written. */
export interface SpilledSlice {
  slice: MemSlice;
  rows: Uint32Array;
  fileId: FileId;
  objectKey: ObjectKey;
  /** Keys of the files after the first (a partitioned table's spill writes one per partition). */
  extra?: string[];
  result?: FlushResult;
  failed?: unknown;
  /** Set when the transaction committed while this file was still being written. */
  adopted?: boolean;
}

export class StreamingTransaction {
  active: MemSlice;
  readonly spilled: SpilledSlice[] = [];
  /** Keys whose row in the table (if any) the transaction deletes or replaces. */
  readonly deletedTableKeys = new Set<string>();
  opCount = 0;
  state: 'open' | 'committed' | 'aborted' = 'open';
  private readonly hasher = new KeyHasher();

  constructor(
    readonly xid: string,
    /** The schema of the rows in the private active slice (spilled slices keep theirs). */
    public schema: TableSchema,
    private readonly hasKey: boolean,
  ) {
    this.active = new MemSlice(schema.fields, hasKey);
  }

  private get fields(): NestedField[] {
    return this.schema.fields;
  }

  /** Carries the private active slice's live rows into `schema` (a change while streaming). */
  evolve(schema: TableSchema): void {
    const old = this.active;
    const map = rowMapper(this.schema, schema);
    this.schema = schema;
    this.active = new MemSlice(schema.fields, this.hasKey);
    for (const row of old.liveRows()) this.active.append(map(old.get(row)), old.hiOf(row), old.loOf(row));
  }

  apply(op: DecodedOp): void {
    this.opCount++;
    if (op.key !== undefined) {
      this.removePrivate(op.key);
      this.deletedTableKeys.add(op.key);
    }
    if (op.op !== 'delete') {
      if (op.key === undefined) this.active.append(op.values);
      else {
        const h = this.hasher.hash(op.key);
        this.active.append(op.values, h.hi, h.lo);
      }
    }
  }

  /** Removes the transaction's own row for a key, wherever it is. */
  private removePrivate(key: string): void {
    const { hi, lo } = this.hasher.hash(key);
    const row = this.active.lookup(hi, lo);
    if (row !== undefined) {
      this.active.delete(row, ZERO_LSN);
      return;
    }
    for (let i = this.spilled.length - 1; i >= 0; i--) {
      const s = this.spilled[i].slice;
      const r = s.lookup(hi, lo);
      if (r !== undefined) {
        s.delete(r, ZERO_LSN);
        return;
      }
    }
  }

  /** Drops the private slice when every row in it was deleted again. */
  discardActive(): void {
    this.active = new MemSlice(this.fields, this.hasKey);
  }

  /** Freezes the private slice for flushing; the caller starts the file write. */
  spill(fileId: FileId, objectKey: ObjectKey): SpilledSlice {
    const slice = this.active;
    slice.frozenAt = ZERO_LSN;
    const s: SpilledSlice = { slice, rows: slice.liveRows(), fileId, objectKey };
    this.spilled.push(s);
    this.active = new MemSlice(this.fields, this.hasKey);
    return s;
  }
}
