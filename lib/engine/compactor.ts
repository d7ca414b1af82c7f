/**
 * Compaction: merges small data files and files with many deleted rows into files near the
 * target size. The plan is made on the table's loop (which files, their deletion vectors at
 * that moment); reading and uploading are async I/O, and rewriting runs in a worker thread a
 * row group at a time, in memory bounded by the inputs' bytes. The result carries, for every
 * input row, where it went, so deletes that arrive meanwhile can follow their rows.
 */

import type { ColumnStats } from '../columns/column-stats.ts';
import type { RoaringBitmap64 } from '../iceberg/roaring.ts';
import type { Lsn } from '../lsn.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import type { NestedField } from '../schema/iceberg-type.ts';
import type { PartitionTuple } from '../schema/partition-spec.ts';
import type { FileId, ObjectKey } from '../store/object-keys.ts';
import type { ObjectStore } from '../store/object-store.ts';
import type { CompactionJob, Placement } from './compaction-job.ts';

export type { Placement };

import type { DataFile } from './data-file.ts';
import type { RowHashes } from './file-index.ts';
import { IndexRun, runForFile } from './index-run.ts';
import { hasLayout, type RowLayout } from './row-layout.ts';
import { compactIn } from './worker-jobs.ts';

export interface CompactionInput {
  fileId: FileId;
  objectKey: ObjectKey;
  rowCount: number;
  sizeBytes: number;
  /** Deleted positions when the plan was made (a copy). */
  deletesAtStart: RoaringBitmap64;
}

export interface CompactionPlan {
  inputs: CompactionInput[];
  /**
   * Output files to write (ids and keys reserved up front; for a laid-out plan, added as the
   * job finds its partitions, see runCompaction).
   */
  outputs: { fileId: FileId; objectKey: ObjectKey }[];
  /** Rows per output file, so outputs land near the target size. */
  rowsPerOutput: number;
  startLsn: Lsn;
  /** A partitioned or sorted table: outputs by partition of this spec, rows in this order. */
  layout?: RowLayout;
}

export interface CompactionOutput {
  fileId: FileId;
  objectKey: ObjectKey;
  rowCount: number;
  sizeBytes: number;
  stats: Map<number, ColumnStats>;
  run: IndexRun | undefined;
  specId: number;
  partition: PartitionTuple;
  sortOrderId: number;
}

/**
 * Where a compaction put an input's rows, from what the plan knew: the live rows of all inputs
 * in order (compaction-job.ts writes them so), so a row's place is the live rows before it —
 * no table of every row is kept.
 */
export class RowMapping {
  /**
   * @param base live rows of the inputs before this one
   * @param deleted this input's deleted positions when the plan was made, ascending
   */
  constructor(
    readonly base: number,
    readonly deleted: Uint32Array,
    readonly rowsPerOutput: number,
    /** A laid-out compaction: where each live row (in input order) went. */
    readonly placement?: Placement,
  ) {}

  /** The output (index into the plan's outputs) and position of input row `pos`; undefined if it was deleted already. */
  place(pos: number): [output: number, pos: number] | undefined {
    let a = 0;
    let b = this.deleted.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (this.deleted[m] < pos) a = m + 1;
      else b = m;
    }
    if (a < this.deleted.length && this.deleted[a] === pos) return undefined;
    const at = this.base + pos - a;
    if (this.placement) return [this.placement.output[at], this.placement.pos[at]];
    return [Math.floor(at / this.rowsPerOutput), at % this.rowsPerOutput];
  }
}

export interface CompactionResult {
  outputs: CompactionOutput[];
  mapping: Map<number, RowMapping>;
  /** Input row groups decoded (compaction-job.ts reads one at a time). */
  rowGroupsRead: number;
  /** The compaction thread's WebAssembly memory (its high-water mark). */
  wasmBytes: number;
}

export interface PlanOptions {
  targetFileBytes: number;
  deletedRatio: number;
  minSmallFiles: number;
  /** Writes are keeping the loop busy: small files wait until there are 4 × minSmallFiles. */
  busy?: boolean;
  /** Called when small files that would be merged now wait because of `busy`. */
  onDeferred?: () => void;
  nextFileId: () => FileId;
  objectKeyFor: (fileId: FileId) => ObjectKey;
  startLsn: Lsn;
  /**
   * At most this much memory (compactionMemory) for the pass, what the budget leaves; a pass
   * that cannot take two inputs waits.
   */
  maxMemoryBytes?: number;
  /** Bytes of one decoded row in memory (for compactionMemory). */
  rowBytes?: number;
  /** Every file is an input (a rewrite into the current partition spec), not only small ones. */
  rewrite?: boolean;
  /** Output ids are not reserved up front (a laid-out plan: see {@link CompactionPlan.outputs}). */
  deferOutputs?: boolean;
  /** Inputs are held decoded whole (a laid-out plan): counted by compactionMemory. */
  laidOut?: boolean;
}

/** Rows per row group of the files this service writes (parquet-codec.mjs's default). */
const ROW_GROUP_ROWS = 122_880;
/** A compaction worker's own footprint: its runtime, code and WebAssembly memory. */
const WORKER_BYTES = 96 * 1024 * 1024;

/**
 * The memory a compaction of these inputs holds at its peak (compaction-job.ts reads and writes
 * a row group at a time), as measured on the bench's rows: the inputs' bytes (as read, and in
 * the reader), the outputs' bytes twice (as written, and joined into one file), 56 bytes per
 * input row (its key hash as the index gave it, 9, and as the compaction keeps it, 8; the
 * outputs' index runs, 16, and sorting them, 20; where each row goes is not a table but
 * RowMapping), about four row groups of decoded rows, and the worker itself. Measured in the
 * overload bench before RowMapping: about 100 bytes per row of resident growth with ~9 bytes of
 * Parquet per row, as this gave with 8 more bytes per row.
 */
export function compactionMemory(
  inputs: { rowCount: number; sizeBytes: number }[],
  rowBytes: number,
  laidOut = false,
): number {
  let bytes = WORKER_BYTES + 4 * ROW_GROUP_ROWS * rowBytes;
  // A laid-out compaction holds every input row decoded (twice: as read, and as one batch), a
  // column of them as JavaScript values, and where each row goes.
  for (const i of inputs)
    bytes += 4 * i.sizeBytes + 56 * i.rowCount + (laidOut ? (2 * rowBytes + 64) * i.rowCount : 0);
  return bytes;
}

/** Picks files to compact, or undefined when nothing is worth doing. */
export function planCompaction(files: DataFile[], o: PlanOptions): CompactionPlan | undefined {
  const small = files.filter((f) => f.sizeBytes < o.targetFileBytes / 2);
  const deleted = files.filter((f) => f.rowCount > 0 && f.deletes.size / f.rowCount >= o.deletedRatio);
  const chosen = new Set<DataFile>(o.rewrite ? files : deleted);
  const enoughSmall = small.length >= (o.busy ? 4 * o.minSmallFiles : o.minSmallFiles);
  if (enoughSmall || (deleted.length > 0 && small.length > 0)) for (const f of small) chosen.add(f);
  else if (o.busy && small.length >= o.minSmallFiles) o.onDeferred?.();
  if (chosen.size === 0) return undefined;
  if (chosen.size === 1 && !o.rewrite) {
    const only = [...chosen][0];
    // A single small file with no deletes gains nothing from a rewrite.
    if (only.deletes.isEmpty()) return undefined;
  }
  // Oldest first, and no more than about two target files' worth in one pass.
  const inputs: CompactionInput[] = [];
  let bytes = 0;
  let liveRows = 0;
  let liveBytes = 0;
  for (const f of [...chosen].sort((a, b) => a.fileId - b.fileId)) {
    if (inputs.length > 0 && bytes + f.sizeBytes > o.targetFileBytes * 2) break;
    if (
      o.maxMemoryBytes !== undefined &&
      compactionMemory([...inputs, f], o.rowBytes ?? 0, o.laidOut) > o.maxMemoryBytes
    )
      break;
    inputs.push({
      fileId: f.fileId,
      objectKey: f.objectKey,
      rowCount: f.rowCount,
      sizeBytes: f.sizeBytes,
      deletesAtStart: f.deletes.clone(),
    });
    bytes += f.sizeBytes;
    const live = f.rowCount - f.deletes.size;
    liveRows += live;
    liveBytes += f.rowCount > 0 ? (f.sizeBytes * live) / f.rowCount : 0;
  }
  // Memory admits one file at most: merging needs two; a single file is rewritten only for its deletes.
  if (inputs.length === 0 || (inputs.length === 1 && inputs[0].deletesAtStart.isEmpty() && !o.rewrite))
    return undefined;
  const bytesPerRow = liveRows > 0 ? Math.max(1, liveBytes / liveRows) : 1;
  const rowsPerOutput = Math.max(1, Math.floor(o.targetFileBytes / bytesPerRow));
  const outputCount = Math.max(1, Math.ceil(liveRows / rowsPerOutput));
  const outputs = Array.from({ length: liveRows === 0 || o.deferOutputs ? 0 : outputCount }, () => {
    const fileId = o.nextFileId();
    return { fileId, objectKey: o.objectKeyFor(fileId) };
  });
  return { inputs, outputs, rowsPerOutput, startLsn: o.startLsn };
}

/** Each input's RowMapping (the inputs in the plan's order, as the job takes them). */
export function rowMappings(plan: CompactionPlan, placement?: Placement): Map<number, RowMapping> {
  const out = new Map<number, RowMapping>();
  let base = 0;
  for (const i of plan.inputs) {
    const deleted = Uint32Array.from(i.deletesAtStart.toArray());
    out.set(i.fileId, new RowMapping(base, deleted, plan.rowsPerOutput, placement));
    base += i.rowCount - deleted.length;
  }
  return out;
}

export interface CompactionDeps {
  store: ObjectStore;
  pool: ParquetWorkerPool;
  fields: NestedField[];
  keyColumns: number[];
  compression: 'zstd' | 'snappy' | 'lz4' | 'none';
  /** Key hashes of the inputs' rows from the index (gathered in the background meanwhile). */
  rowHashes?: Map<number, RowHashes> | Promise<Map<number, RowHashes>>;
  /** A laid-out plan's output ids and keys, taken as the job's outputs come back. */
  allocate?: () => { fileId: FileId; objectKey: ObjectKey };
}

/**
 * Runs a plan (taking over `rowHashes`: their buffers go to the worker): reads the inputs from the store, merges and encodes them in a Parquet worker
 * (compaction-job.ts: decoding, taking live rows, hashing, statistics, encoding and the
 * outputs' index runs are all CPU work, none of it on the table's thread), then uploads the
 * outputs.
 */
export async function runCompaction(plan: CompactionPlan, deps: CompactionDeps): Promise<CompactionResult> {
  const inputs = [];
  const rowHashes = await deps.rowHashes;
  for (const input of plan.inputs) {
    inputs.push({
      fileId: input.fileId,
      rowCount: input.rowCount,
      parquet: await deps.store.get(input.objectKey),
      deletes: Uint32Array.from(input.deletesAtStart.toArray()),
      hashes: rowHashes?.get(input.fileId),
    });
  }
  const job: CompactionJob = {
    fields: deps.fields,
    keyColumns: deps.keyColumns,
    compression: deps.compression,
    rowsPerOutput: plan.rowsPerOutput,
    outputs: plan.outputs.map((o) => o.fileId),
    inputs,
    ...(hasLayout(plan.layout) ? { layout: { spec: plan.layout.spec, order: plan.layout.order } } : {}),
  };
  const result = await compactIn(deps.pool, job);
  const outputs: CompactionOutput[] = [];
  const laidOut = hasLayout(plan.layout);
  if (laidOut && !deps.allocate) throw new Error('a laid-out compaction needs allocate()');
  for (let k = 0; k < result.outputs.length; k++) {
    const o = result.outputs[k];
    if (laidOut) plan.outputs.push(deps.allocate!());
    const { fileId, objectKey } = plan.outputs[k];
    await deps.store.put(objectKey, o.bytes);
    outputs.push({
      fileId,
      objectKey,
      rowCount: o.rowCount,
      sizeBytes: o.bytes.length,
      stats: o.stats,
      run: o.run ? (laidOut ? runForFile(o.run, fileId) : IndexRun.fromParts(o.run)) : undefined,
      specId: plan.layout?.spec.specId ?? 0,
      partition: o.partition ?? [],
      sortOrderId: plan.layout?.order.orderId ?? 0,
    });
  }
  return {
    outputs,
    mapping: rowMappings(plan, result.placement),
    rowGroupsRead: result.rowGroupsRead,
    wasmBytes: result.wasmBytes,
  };
}
