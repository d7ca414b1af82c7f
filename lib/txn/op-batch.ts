/**
 * A transaction's operations in columns, as the request scanner decodes them
 * (schema/request-scanner.ts): one MemSlice-style column per table column, an op code and a key
 * string per operation. Applying it copies values column to column (UTF-8 bytes, 64-bit words)
 * instead of making a value object per field; {@link OpBatch.op} gives any operation back in
 * the general form, {@link DecodedOp}.
 */

import { type ColumnBuffer, columnBufferFor } from '../columns/column-buffer.ts';
import type { KeyHashes } from '../schema/key-hash.ts';
import type { TableSchema } from '../schema/table-schema.ts';
import type { Value } from '../schema/values.ts';

export type OpKind = 'insert' | 'upsert' | 'delete';

/** One decoded operation of a transaction. */
export interface DecodedOp {
  op: OpKind;
  /** One value per column in schema order; for deletes only key columns are set. */
  values: Value[];
  /** Primary-key string; undefined for tables without a primary key. */
  key: string | undefined;
}

export const OP_INSERT = 0;
export const OP_UPSERT = 1;
export const OP_DELETE = 2;
const KINDS: OpKind[] = ['insert', 'upsert', 'delete'];

export class OpBatch {
  /** Per operation: {@link OP_INSERT}, {@link OP_UPSERT} or {@link OP_DELETE}. */
  kinds: Uint8Array = new Uint8Array(64);
  /**
   * Primary-key string per operation (tables with a key), as `keyOf` makes it. A batch from a
   * worker carries them as one text (see {@link fromParts}): the list is made only when
   * something asks for it (applying the batch uses the key hashes).
   */
  get keys(): string[] | undefined {
    const packed = this.packedKeys;
    if (packed) {
      this.packedKeys = undefined;
      const list = this.keyList!;
      let start = 0;
      for (let i = 0; i < packed.ends.length; i++) {
        list.push(packed.text.slice(start, packed.ends[i]));
        start = packed.ends[i];
      }
    }
    return this.keyList;
  }
  private readonly keyList: string[] | undefined;
  private packedKeys: PackedKeys | undefined;
  /** Row values per column; a delete's row holds its key columns and nulls. */
  readonly columns: ColumnBuffer[];
  length = 0;
  /**
   * Each key's hash (schema/key-hash.ts), when whoever decoded the batch made them (a worker,
   * so the table's thread does not). Undefined once operations are added.
   */
  keyHashes: KeyHashes | undefined;

  constructor(readonly schema: TableSchema) {
    this.columns = schema.fields.map((f) => columnBufferFor(f.type));
    this.keyList = schema.primaryKey.length > 0 ? [] : undefined;
  }

  /** A batch around columns decoded elsewhere (a worker's, see decode-job.ts). */
  static fromParts(
    schema: TableSchema,
    length: number,
    kinds: Uint8Array,
    keys: string[] | PackedKeys | undefined,
    columns: ColumnBuffer[],
    keyHashes?: KeyHashes,
  ): OpBatch {
    const batch = new OpBatch(schema);
    batch.kinds = kinds.length > 0 ? kinds : new Uint8Array(64);
    batch.length = length;
    if (batch.keyList && keys) {
      if (Array.isArray(keys)) batch.keyList.push(...keys);
      else if (keys.ends.length === length) batch.packedKeys = keys;
      else throw new Error(`a batch of ${length} operations with ${keys.ends.length} keys`);
    }
    batch.columns.splice(0, batch.columns.length, ...columns);
    if (batch.keyList && keyHashes && keyHashes.hi.length === length && keyHashes.lo.length === length)
      batch.keyHashes = keyHashes;
    return batch;
  }

  /** A batch of operations given one by one (their values as the decoders make them). */
  static of(schema: TableSchema, ops: DecodedOp[]): OpBatch {
    const batch = new OpBatch(schema);
    for (const o of ops) {
      batch.columns.forEach((c, i) => {
        c.push(o.values[i] ?? null);
      });
      batch.addOp(KINDS.indexOf(o.op), o.key);
    }
    return batch;
  }

  /** Records operation `length`: its kind and key (the caller pushes its values to the columns). */
  addOp(kind: number, key: string | undefined): void {
    if (this.length === this.kinds.length) {
      const next = new Uint8Array(this.kinds.length * 2);
      next.set(this.kinds);
      this.kinds = next;
    }
    this.kinds[this.length++] = kind;
    const keys = this.keys;
    if (keys) keys.push(key!);
    this.keyHashes = undefined;
  }

  /** Appends every operation of `other` (same schema), column to column. */
  append(other: OpBatch): void {
    for (let c = 0; c < this.columns.length; c++)
      this.columns[c].pushRange(other.columns[c], 0, other.length);
    for (let i = 0; i < other.length; i++) this.addOp(other.kinds[i], other.keys?.[i]);
  }

  /** Operation i in the general form. */
  op(i: number): DecodedOp {
    const values: Value[] = this.columns.map((c) => c.get(i));
    return { op: KINDS[this.kinds[i]], values, key: this.keys?.[i] };
  }

  ops(): DecodedOp[] {
    return Array.from({ length: this.length }, (_, i) => this.op(i));
  }
}

/**
 * A batch's key strings as one text: key i is `text.slice(ends[i - 1] ?? 0, ends[i])`. Posting
 * one string between threads costs far less than posting a string per operation, and the
 * receiver keeps no string per row.
 */
export interface PackedKeys {
  text: string;
  ends: Uint32Array;
}

export function packKeys(keys: readonly string[]): PackedKeys {
  const ends = new Uint32Array(keys.length);
  let n = 0;
  for (let i = 0; i < keys.length; i++) {
    n += keys[i].length;
    ends[i] = n;
  }
  return { text: keys.join(''), ends };
}

/** What a log entry or an apply event carries: operations one by one, or in columns. */
export type Operations = DecodedOp[] | OpBatch;
