/**
 * A plain reference model of a table with a primary key: a map from key to row, and its state
 * after every committed transaction, so a read at any LSN can be checked row for row.
 */

import type { Lsn } from '../../lib/lsn.ts';
import { asLsn } from '../../lib/lsn.ts';
import type { TableSchema } from '../../lib/schema/table-schema.ts';
import { type Encoder, fieldEncoder, type Value } from '../../lib/schema/values.ts';
import type { DecodedOp } from '../../lib/txn/transaction.ts';

export class ReferenceModel {
  private current = new Map<string, string>();
  private readonly history: { lsn: Lsn; rows: Map<string, string> }[] = [{ lsn: asLsn(0n), rows: new Map() }];
  private readonly encoders: Encoder[];
  private readonly names: string[];

  constructor(readonly schema: TableSchema) {
    this.encoders = schema.fields.map(fieldEncoder);
    this.names = schema.fields.map((f) => JSON.stringify(f.name));
  }

  /** A row as canonical JSON text (what the scan endpoint would print). */
  rowText(values: Value[]): string {
    return `{${values.map((v, i) => `${this.names[i]}:${this.encoders[i](v)}`).join(',')}}`;
  }

  commit(lsn: Lsn, ops: DecodedOp[]): void {
    const next = new Map(this.current);
    for (const op of ops) {
      if (op.key === undefined) throw new Error('the model needs keyed tables');
      if (op.op === 'delete') next.delete(op.key);
      else next.set(op.key, this.rowText(op.values));
    }
    this.current = next;
    this.history.push({ lsn, rows: next });
  }

  /** Rows as of LSN (the state after the last commit ≤ lsn), sorted. */
  at(lsn: Lsn): string[] {
    let best = this.history[0];
    for (const h of this.history) if (h.lsn <= lsn) best = h;
    return [...best.rows.values()].sort();
  }

  get lastLsn(): Lsn {
    return this.history[this.history.length - 1].lsn;
  }

  get size(): number {
    return this.current.size;
  }
}

/** Deterministic PRNG (mulberry32) so any failing seed can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
