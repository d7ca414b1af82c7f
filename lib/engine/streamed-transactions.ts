/**
 * Streamed transactions (Postgres logical replication's in-progress transactions, bulk
 * imports): their operations collect in a private slice per transaction; a slice that grows
 * past the threshold is spilled to a data file before the commit (`spill-done`). At the commit
 * the transaction's deletes apply to the table, its spilled files join it, and its remaining
 * rows move to the table's active slice; at an abort its files become garbage.
 */

import type { Lsn } from '../lsn.ts';
import { rowMapper } from '../schema/evolve-values.ts';
import type { TableSchema } from '../schema/table-schema.ts';
import { dataFileKey } from '../store/object-keys.ts';
import type { DecodedOp } from '../txn/transaction.ts';
import { writeSliceToFile } from './flusher.ts';
import type { IdempotencyKeys, IdempotentWrite } from './idempotency.ts';
import type { SliceFlushes } from './slice-flushes.ts';
import { type SpilledSlice, StreamingTransaction } from './streaming-transaction.ts';
import type { TableContext, TableEvent } from './table-context.ts';

export class StreamedTransactions {
  private readonly open = new Map<string, StreamingTransaction>();

  constructor(
    private readonly t: TableContext,
    private readonly flushes: SliceFlushes,
  ) {}

  private stream(xid: string): StreamingTransaction {
    let s = this.open.get(xid);
    if (!s) {
      s = new StreamingTransaction(xid, this.t.state.schema, this.t.state.hasKey);
      this.open.set(xid, s);
    }
    return s;
  }

  op(xid: string, op: DecodedOp, schema: TableSchema | undefined): void {
    const t = this.t;
    const s = this.stream(xid);
    const from = schema ?? t.state.schema;
    // A transaction streaming across a schema change goes on in the new schema.
    if (s.schema.schemaId < from.schemaId) s.evolve(from);
    s.apply(
      from.schemaId === s.schema.schemaId ? op : { ...op, values: rowMapper(from, s.schema)(op.values) },
    );
    const o = t.options;
    if (s.active.rowCount < o.memSliceMaxRows && s.active.byteSize < o.memSliceMaxBytes) return;
    if (s.active.liveCount === 0) {
      s.discardActive();
      return;
    }
    const fileId = t.state.newFileId();
    const spilled = s.spill(fileId, dataFileKey(t.tableRoot, fileId, t.newId()));
    t.writesInFlight.add(spilled.objectKey);
    spilled.extra = [];
    writeSliceToFile(
      this.flushes.job(spilled.slice, spilled.rows, fileId, spilled.objectKey, spilled.extra),
      t.deps.store,
      t.deps.pool,
    ).then(
      (result) => t.post({ type: 'spill-done', txn: s, spilled, result }),
      (error) => t.post({ type: 'spill-done', txn: s, spilled, error }),
    );
  }

  /** `spill-done`; true when it was the flush of a slice the table adopted (installed now). */
  spillDone(e: Extract<TableEvent, { type: 'spill-done' }>): boolean {
    const t = this.t;
    const { txn, spilled } = e;
    if (spilled.adopted) {
      // The transaction committed meanwhile: this is now an ordinary flush of a table slice.
      return this.flushes.done({
        type: 'flush-done',
        slice: spilled.slice,
        fileId: spilled.fileId,
        rows: spilled.rows,
        key: spilled.objectKey,
        extra: spilled.extra,
        result: e.result,
        error: e.error,
      });
    }
    t.writesInFlight.delete(spilled.objectKey);
    for (const k of spilled.extra ?? []) t.writesInFlight.delete(k);
    if (txn.state === 'aborted') {
      if (e.result) t.gc.addCandidates(e.result.files.map((f) => f.objectKey));
      return false;
    }
    if (e.error || !e.result) {
      spilled.failed = e.error ?? new Error('spill failed');
      t.log.warn('spilling a streamed transaction failed; it is written again at commit', {
        xid: txn.xid,
        error: e.error,
      });
    } else {
      spilled.result = e.result;
      spilled.slice.releaseColumns();
    }
    return false;
  }

  /** The commit at `lsn` (the caller advances the table to it); nothing when the transaction is not open here. */
  commit(xid: string, lsn: Lsn, idempotency: IdempotencyKeys, idem?: IdempotentWrite): void {
    const t = this.t;
    const state = t.state;
    const s = this.open.get(xid);
    this.open.delete(xid);
    if (!s) return;
    s.state = 'committed';
    if (idem) idempotency.add(idem.key, { lsn, count: s.opCount, hash: idem.hash, at: t.clock.now() });
    for (const key of s.deletedTableKeys) state.deleteKey(key, lsn);
    for (const sp of s.spilled) this.adoptSpilled(sp, lsn);
    // The private active slice's rows join the table's active slice (in its schema).
    if (s.schema.schemaId !== state.schema.schemaId) s.evolve(state.schema);
    const live = s.active.liveRows();
    for (let i = 0; i < live.length; i++) {
      const row = live[i];
      state.insertHashed(s.active.get(row), s.active.hiOf(row), s.active.loOf(row), lsn);
    }
  }

  /** Forgets a transaction seen at a replay (already applied before a restart). */
  forget(xid: string): void {
    this.open.delete(xid);
  }

  /** A spilled slice of a committed streaming transaction joins the table. */
  private adoptSpilled(s: SpilledSlice, lsn: Lsn): void {
    const state = this.t.state;
    for (const d of s.slice.deletesAfterFreeze) d.lsn = lsn;
    if (s.result) {
      for (const f of s.result.files) state.installFile(s.slice, f, lsn);
      state.stateVersion++;
      return;
    }
    // Until its file is in, the slice's rows are read from a tail file like any frozen slice.
    s.slice.seal();
    state.adoptFrozen(s.slice, lsn);
    if (s.failed) {
      // Its write failed: flush again, now as a table slice.
      this.flushes.start(s.slice, s.rows, s.fileId);
      return;
    }
    // Still being written: its spill-done counts as a flush-done.
    s.adopted = true;
    this.flushes.inFlight++;
  }

  abort(xid: string): void {
    const s = this.open.get(xid);
    this.open.delete(xid);
    if (!s) return;
    s.state = 'aborted';
    this.t.gc.addCandidates(
      s.spilled.flatMap((sp) => (sp.result ? sp.result.files.map((f) => f.objectKey) : [])),
    );
  }

  /** Keys of spilled files (kept from the collector). */
  keys(into: Set<string>): void {
    for (const s of this.open.values())
      for (const sp of s.spilled) {
        into.add(sp.objectKey);
        for (const k of sp.extra ?? []) into.add(k);
      }
  }
}
