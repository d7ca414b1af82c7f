/**
 * TableState: one table's data as the writer holds it — the active and frozen MemSlices, the
 * data files with their deletion vectors, the file index, deletes not yet committed, the
 * applied LSN and source checkpoints. Changed only by the table's loop, synchronously: nothing
 * here awaits, starts I/O or sets a timer. Slices that freeze are queued in `toFlush` for the
 * loop to write; files come back through `installFlushed` and `installCompacted`.
 *
 * Write path: each operation looks its key up (the MemSlice key maps, newest first, then the
 * file index); an old row in memory is marked deleted there, an old row in a data file becomes
 * a bit in that file's deletion vector; a new row appends to the active slice, which freezes
 * past its size threshold.
 */

import type { Lsn } from '../lsn.ts';
import { KeyHasher } from '../schema/key-hash.ts';
import type { TableSchema } from '../schema/table-schema.ts';
import type { Value } from '../schema/values.ts';
import { asFileId, type FileId } from '../store/object-keys.ts';
import { OP_DELETE, OpBatch, type Operations } from '../txn/op-batch.ts';
import { type DecodedOp, type RowCodec, rowCodec } from '../txn/transaction.ts';
import type { Clock } from '../util/clock.ts';
import type { CompactionPlan, CompactionResult } from './compactor.ts';
import { type DataFile, liveRowCount, newDataFile, PendingDeletes } from './data-file.ts';
import { FileIndex } from './file-index.ts';
import type { FlushedFile } from './flusher.ts';
import type { CommitPlan } from './iceberg-committer.ts';
import type { IndexRun } from './index-run.ts';
import { MemSlice } from './mem-slice.ts';
import type { EngineOptions } from './options.ts';
import type { RowLayout } from './row-layout.ts';

/** A frozen slice's rows to write as a data file (the first of a partitioned flush's files gets `fileId`). */
export interface SliceToFlush {
  slice: MemSlice;
  rows: Uint32Array;
  fileId: FileId;
}

export function frozenAt(slice: MemSlice): Lsn {
  if (slice.frozenAt === undefined) throw new Error(`slice ${slice.id} is not frozen`);
  return slice.frozenAt;
}

export interface TableStateInit {
  schema: TableSchema;
  layout: RowLayout;
  files: DataFile[];
  runs: IndexRun[];
  nextFileId: FileId;
  lsn: Lsn;
  checkpoints: Record<string, string>;
  options: EngineOptions;
  spillDir: string;
  clock: Pick<Clock, 'now'>;
}

export class TableState {
  /** The schema of the rows applied so far (changes at a schema change). */
  schema: TableSchema;
  codec: RowCodec;
  readonly hasKey: boolean;
  /** How new data files are partitioned and sorted. */
  layout: RowLayout;
  active: MemSlice;
  /** Slices frozen for flushing, oldest first. */
  readonly frozen: MemSlice[] = [];
  /** Frozen slices whose flush the loop has not started yet. */
  readonly toFlush: SliceToFlush[] = [];
  readonly files = new Map<FileId, DataFile>();
  /** The next data file's id (see newFileId). */
  private fileIdSeq: number;
  readonly index: FileIndex;
  readonly pendingDeletes = new PendingDeletes();
  appliedLsn: Lsn;
  readonly checkpoints: Record<string, string>;
  /** Bumped on every change a read snapshot would show. */
  stateVersion = 0;
  /** Bytes a row takes in memory decoded (the last frozen slice's average). */
  rowBytes = 100;
  /** Something changed since the last Iceberg commit, and since when (ms; the commit lag). */
  changedSinceCommit = false;
  uncommittedSince: number | undefined;
  /** Keys of Iceberg data files that compaction replaced since the last commit. */
  removedSinceCommit: string[] = [];
  private readonly hasher = new KeyHasher();
  private readonly o: EngineOptions;
  private readonly clock: Pick<Clock, 'now'>;

  constructor(init: TableStateInit) {
    this.o = init.options;
    this.clock = init.clock;
    this.schema = init.schema;
    this.codec = rowCodec(init.schema);
    this.hasKey = this.codec.keyColumns.length > 0;
    this.layout = init.layout;
    this.active = this.newSlice();
    this.index = new FileIndex({
      memoryBudgetBytes: init.options.indexMemoryBytes,
      spillDir: init.spillDir,
      maxRuns: init.options.indexMaxRuns,
    });
    for (const f of init.files) this.files.set(f.fileId, f);
    for (const r of init.runs) this.index.add(r);
    this.fileIdSeq = init.nextFileId;
    this.appliedLsn = init.lsn;
    this.checkpoints = { ...init.checkpoints };
  }

  /** An id for a new data file (ids are never reused). */
  newFileId(): FileId {
    return asFileId(this.fileIdSeq++);
  }

  /** The id the next data file gets (what a commit records for recovery). */
  get nextFileId(): FileId {
    return asFileId(this.fileIdSeq);
  }

  /** A new active slice, sized for as many rows as the one before it reached (at most 4 M). */
  private newSlice(expectedRows = 1024): MemSlice {
    return new MemSlice(this.schema.fields, this.hasKey, Math.min(expectedRows, 4 << 20));
  }

  /** Every slice in memory: the frozen ones, oldest first, then the active one. */
  slices(): MemSlice[] {
    return [...this.frozen, this.active];
  }

  /** Files still in the table (not left by a TRUNCATE). */
  liveFiles(): DataFile[] {
    return [...this.files.values()].filter((f) => f.removedLsn === undefined);
  }

  markChanged(): void {
    this.changedSinceCommit = true;
    this.uncommittedSince ??= this.clock.now();
  }

  /** Applies a transaction's operations at `lsn` (the caller advances the LSN). */
  apply(ops: Operations, lsn: Lsn): void {
    if (ops instanceof OpBatch) this.applyBatch(ops, lsn);
    else for (const op of ops) this.applyOp(op, lsn);
  }

  /**
   * {@link applyOp} for each operation of a batch, its values copied column to column a run at
   * a time: the operations up to the next point where the active slice may freeze (its row
   * limit, or the next 64th row, where its size is asked) have their keys applied one by one
   * and their values copied together.
   */
  private applyBatch(batch: OpBatch, lsn: Lsn): void {
    const kinds = batch.kinds;
    const hashes = batch.keyHashes;
    // Key strings only when the batch has no hashes (a worker's batch sends its keys as one
    // text, and the list is made only when asked for).
    const keys = hashes ? undefined : batch.keys;
    const keyed = this.hasKey;
    const h = this.hasher;
    const bySize = this.o.memSliceMaxBytes >= 1 << 20;
    let i = 0;
    while (i < batch.length) {
      const slice = this.active;
      const rows = slice.rowCount;
      // A run ends where maybeFreeze would freeze when every operation appends a row.
      const room = bySize ? Math.min(this.o.memSliceMaxRows - rows, 64 - (rows & 63)) : 1;
      const end = Math.min(batch.length, i + Math.max(1, room));
      let runStart = i;
      for (; i < end; i++) {
        if (!keyed) {
          slice.appendKeyOnly();
          continue;
        }
        let hi: number;
        let lo: number;
        if (hashes) {
          hi = hashes.hi[i];
          lo = hashes.lo[i];
        } else {
          h.hash(keys![i]);
          hi = h.hi;
          lo = h.lo;
        }
        this.deleteHashed(hi, lo, lsn);
        if (kinds[i] === OP_DELETE) {
          // Values of the run so far, then the next run starts after the delete.
          slice.appendColumns(batch, runStart, i);
          runStart = i + 1;
          continue;
        }
        slice.appendKeyOnly(hi, lo);
      }
      slice.appendColumns(batch, runStart, end);
      if (slice.rowCount !== rows) this.maybeFreeze(lsn);
    }
  }

  /** One operation: the key's old row (if any) is deleted, a new row appended unless it is a delete. */
  applyOp(op: DecodedOp, lsn: Lsn): void {
    const key = op.key;
    if (key === undefined) {
      this.active.append(op.values);
    } else {
      const h = this.hasher.hash(key);
      const hi = h.hi;
      const lo = h.lo;
      this.deleteHashed(hi, lo, lsn);
      if (op.op === 'delete') return;
      this.active.append(op.values, hi, lo);
    }
    this.maybeFreeze(lsn);
  }

  /**
   * An insert of a row whose key hash is known (a streamed transaction's row joining the table:
   * the hash its key was given when the transaction took it).
   */
  insertHashed(values: Value[], hi: number, lo: number, lsn: Lsn): void {
    if (this.hasKey) this.deleteHashed(hi, lo, lsn);
    this.active.append(values, hi, lo);
    this.maybeFreeze(lsn);
  }

  /** Deletes the live row with this primary key, wherever it is; a missing key is a no-op. */
  deleteKey(key: string, lsn: Lsn): void {
    const h = this.hasher.hash(key);
    this.deleteHashed(h.hi, h.lo, lsn);
  }

  private deleteHashed(hi: number, lo: number, lsn: Lsn): void {
    const row = this.active.lookup(hi, lo);
    if (row !== undefined) {
      this.active.delete(row, lsn);
      return;
    }
    for (let i = this.frozen.length - 1; i >= 0; i--) {
      const r = this.frozen[i].lookup(hi, lo);
      if (r !== undefined) {
        this.frozen[i].delete(r, lsn);
        return;
      }
    }
    const loc = this.findInFiles(hi, lo);
    if (loc) {
      loc.file.deletes.add(loc.pos);
      loc.file.dvDirty = true;
      this.pendingDeletes.add(lsn, loc.file.fileId, loc.pos);
    }
  }

  private findInFiles(hi: number, lo: number): { file: DataFile; pos: number } | undefined {
    this.found = undefined;
    this.index.find(hi, lo, this.visitIndexEntry);
    return this.found;
  }

  /** The index's answer for {@link findInFiles} (one visitor for every lookup: no closure per row). */
  private found: { file: DataFile; pos: number } | undefined;
  private readonly visitIndexEntry = (fileId: number, pos: number): boolean => {
    const file = this.files.get(asFileId(fileId));
    if (!file || file.removedLsn !== undefined || file.deletes.has(pos)) return false;
    this.found = { file, pos };
    return true;
  };

  private maybeFreeze(lsn: Lsn): void {
    const rows = this.active.rowCount;
    if (rows >= this.o.memSliceMaxRows) return this.freezeActive(lsn);
    // The size estimate sums every column: asked every 64 rows (every row when the limit is tiny).
    if ((rows & 63) !== 0 && this.o.memSliceMaxBytes >= 1 << 20) return;
    if (this.active.byteSize >= this.o.memSliceMaxBytes) this.freezeActive(lsn);
  }

  /** Freezes the active slice and queues it for flushing (nothing to flush when no row is live). */
  freezeActive(lsn: Lsn): void {
    const slice = this.active;
    if (slice.rowCount === 0) return;
    this.rowBytes = Math.max(16, slice.byteSize / slice.rowCount);
    this.active = this.newSlice(slice.rowCount);
    slice.frozenAt = lsn;
    slice.seal();
    const rows = slice.liveRows();
    if (rows.length === 0) {
      // Nothing live: no file to write; its tail files drop out of the next snapshot.
      this.stateVersion++;
      return;
    }
    this.frozen.push(slice);
    this.toFlush.push({ slice, rows, fileId: this.newFileId() });
  }

  /** A slice frozen elsewhere (a streamed transaction's) joins the table's frozen slices at `lsn`. */
  adoptFrozen(slice: MemSlice, lsn: Lsn): void {
    slice.frozenAt = lsn;
    this.frozen.push(slice);
  }

  /** A new schema: rows in memory keep theirs (the active slice is frozen), rows from now on are in it. */
  changeSchema(schema: TableSchema): void {
    this.freezeActive(this.appliedLsn);
    this.schema = schema;
    this.codec = rowCodec(schema);
    this.active = this.newSlice();
    this.stateVersion++;
    this.markChanged();
  }

  /** Empties the table at `lsn`: rows in memory are deleted; files leave at the next commit covering it. */
  truncate(lsn: Lsn): void {
    for (const slice of this.slices()) {
      for (let r = 0; r < slice.rowCount; r++) slice.delete(r, lsn);
    }
    for (const f of this.files.values()) if (f.removedLsn === undefined) f.removedLsn = lsn;
  }

  /** The table has applied everything through `lsn`. */
  advanceTo(lsn: Lsn, checkpoint?: [string, string]): void {
    this.appliedLsn = lsn;
    if (checkpoint) this.checkpoints[checkpoint[0]] = checkpoint[1];
    this.stateVersion++;
    this.markChanged();
  }

  /** A slice's flush is done: its files join the table and the slice leaves memory. */
  installFlushed(slice: MemSlice, files: FlushedFile[]): void {
    for (const f of files) this.installFile(slice, f, frozenAt(slice));
    this.frozen.splice(this.frozen.indexOf(slice), 1);
    this.stateVersion++;
  }

  /** A flushed slice becomes a data file: deletes made during the flush move to its deletion vector. */
  installFile(slice: MemSlice, result: FlushedFile, addedLsn: Lsn): DataFile {
    const { fileId, rows } = result;
    const file = newDataFile({
      fileId,
      objectKey: result.objectKey,
      rowCount: result.rowCount,
      sizeBytes: result.sizeBytes,
      addedLsn,
      addedAt: this.clock.now(),
      stats: result.stats,
      specId: result.specId,
      partition: result.partition,
      sortOrderId: result.sortOrderId,
    });
    if (slice.deletesAfterFreeze.length > 0) {
      const posOf = new Int32Array(slice.rowCount).fill(-1);
      for (let i = 0; i < rows.length; i++) posOf[rows[i]] = i;
      for (const d of slice.deletesAfterFreeze) {
        const pos = posOf[d.row];
        if (pos < 0) continue;
        file.deletes.add(pos);
        this.pendingDeletes.add(d.lsn, fileId, pos);
      }
      file.dvDirty = !file.deletes.isEmpty();
    }
    this.files.set(fileId, file);
    if (result.run) this.index.add(result.run);
    this.markChanged();
    return file;
  }

  /**
   * A compaction's outputs replace its inputs. Deletes that happened while it ran move to the
   * outputs; a TRUNCATE applied meanwhile takes the outputs too (else truncated rows come back).
   */
  installCompacted(plan: CompactionPlan, result: CompactionResult): DataFile[] {
    const outputs = result.outputs.map((o) => {
      const f = newDataFile({
        fileId: o.fileId,
        objectKey: o.objectKey,
        rowCount: o.rowCount,
        sizeBytes: o.sizeBytes,
        addedLsn: plan.startLsn,
        addedAt: this.clock.now(),
        stats: o.stats,
        specId: o.specId,
        partition: o.partition,
        sortOrderId: o.sortOrderId,
      });
      this.files.set(f.fileId, f);
      if (o.run) this.index.add(o.run);
      return f;
    });
    const inputIds = new Set(plan.inputs.map((i) => i.fileId));
    let removedLsn: Lsn | undefined;
    for (const input of plan.inputs) {
      const r = this.files.get(input.fileId)?.removedLsn;
      if (r !== undefined && (removedLsn === undefined || r < removedLsn)) removedLsn = r;
    }
    if (removedLsn !== undefined) for (const o of outputs) o.removedLsn = removedLsn;
    for (const input of plan.inputs) {
      const f = this.files.get(input.fileId);
      const mapping = result.mapping.get(input.fileId);
      if (!f || !mapping) throw new Error(`compaction input ${input.fileId} is not in the table`);
      for (const pos of f.deletes) {
        const at = mapping.place(pos);
        if (!at) continue; // deleted before compaction started: the row is not in the output
        outputs[at[0]].deletes.add(at[1]);
        outputs[at[0]].dvDirty = true;
      }
      this.files.delete(input.fileId);
      if (f.inIceberg) this.removedSinceCommit.push(f.objectKey);
    }
    this.pendingDeletes.remap((fileId, pos) => {
      if (!inputIds.has(asFileId(fileId))) return [fileId, pos];
      const at = result.mapping.get(asFileId(fileId))?.place(pos);
      return at ? [outputs[at[0]].fileId, at[1]] : undefined;
    });
    // The inputs' index entries are never needed again (recovery from an older commit loads
    // that commit's persisted runs, which stay referenced).
    this.index.dropDeadRuns((fileId) => this.files.has(asFileId(fileId)));
    this.stateVersion++;
    this.markChanged();
    return outputs;
  }

  /** An Iceberg commit through `plan.lsn` is done: what it holds is committed, truncated files leave. */
  committed(plan: CommitPlan): void {
    for (const f of plan.included) f.inIceberg = true;
    for (const [fileId, committed] of plan.committedDeletes) {
      const f = this.files.get(asFileId(fileId));
      if (f) f.committedDeletes = committed;
    }
    this.pendingDeletes.takeThrough(plan.lsn);
    for (const f of [...this.files.values()]) {
      if (f.removedLsn !== undefined && f.removedLsn <= plan.lsn) {
        this.files.delete(f.fileId);
        this.stateVersion++;
      }
    }
    this.removedSinceCommit = this.removedSinceCommit.filter((k) => !plan.removedKeys.includes(k));
    this.changedSinceCommit =
      this.appliedLsn > plan.lsn ||
      this.removedSinceCommit.length > 0 ||
      [...this.files.values()].some((f) => !f.inIceberg);
    // What is left came after the commit was planned: its lag counts from about now.
    this.uncommittedSince = this.changedSinceCommit ? this.clock.now() : undefined;
  }

  /** Rows in slices (buffered and frozen) and index runs in memory, in bytes. */
  memoryBytes(): number {
    let bytes = this.active.byteSize + this.index.memoryBytes;
    for (const s of this.frozen) bytes += s.byteSize;
    return bytes;
  }

  /** Live rows and bytes in files and in memory. */
  counts(): { rows: number; fileBytes: number; memRows: number; memBytes: number } {
    let rows = 0;
    let fileBytes = 0;
    for (const f of this.files.values()) {
      rows += liveRowCount(f);
      fileBytes += f.sizeBytes;
    }
    let memRows = 0;
    let memBytes = 0;
    for (const s of this.slices()) {
      memRows += s.liveCount;
      memBytes += s.byteSize;
    }
    return { rows: rows + memRows, fileBytes, memRows, memBytes };
  }
}
