/**
 * Compaction: merges small data files and files with many deleted rows into files near the
 * target size. The plan is made on the table's loop (which files, their deletion vectors at
 * that moment); reading, rewriting and uploading run off it. The result carries, for every
 * input row, where it went, so deletes that arrive meanwhile can follow their rows.
 */

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type * as arrow from 'apache-arrow';
import type { RoaringBitmap64 } from '../iceberg/roaring.ts';
import type { Lsn } from '../lsn.ts';
import {
  arrowSchemaFor,
  buildData,
  buildRecordBatch,
  readData,
  tableFromIpc,
  tableToIpc,
} from '../parquet/arrow-convert.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import type { NestedField } from '../schema/iceberg-type.ts';
import { keyString, type Value } from '../schema/values.ts';
import type { ObjectStore } from '../store/object-store.ts';
import { type ColumnStats, computeStats } from './column-stats.ts';
import type { DataFile } from './data-file.ts';
import { indexRunFor } from './flusher.ts';
import type { IndexRun } from './index-run.ts';

export interface CompactionInput {
  fileId: number;
  key: string;
  rowCount: number;
  sizeBytes: number;
  /** Deleted positions when the plan was made (a copy). */
  deletesAtStart: RoaringBitmap64;
}

export interface CompactionPlan {
  inputs: CompactionInput[];
  /** Output files to write (ids and keys reserved up front). */
  outputs: { fileId: number; key: string }[];
  /** Rows per output file, so outputs land near the target size. */
  rowsPerOutput: number;
  startLsn: Lsn;
}

export interface CompactionOutput {
  fileId: number;
  key: string;
  rowCount: number;
  sizeBytes: number;
  stats: Map<number, ColumnStats>;
  run: IndexRun | undefined;
}

export interface RowMapping {
  /** Output index per input position, -1 where the row was already deleted. */
  outIndex: Int32Array;
  outPos: Int32Array;
}

export interface CompactionResult {
  outputs: CompactionOutput[];
  mapping: Map<number, RowMapping>;
}

export interface PlanOptions {
  targetFileBytes: number;
  deletedRatio: number;
  minSmallFiles: number;
  nextFileId: () => number;
  keyFor: (fileId: number) => string;
  startLsn: Lsn;
}

/** Picks files to compact, or undefined when nothing is worth doing. */
export function planCompaction(files: DataFile[], o: PlanOptions): CompactionPlan | undefined {
  const small = files.filter((f) => f.sizeBytes < o.targetFileBytes / 2);
  const deleted = files.filter((f) => f.rowCount > 0 && f.deletes.size / f.rowCount >= o.deletedRatio);
  const chosen = new Set<DataFile>(deleted);
  if (small.length >= o.minSmallFiles || (deleted.length > 0 && small.length > 0))
    for (const f of small) chosen.add(f);
  if (chosen.size === 0) return undefined;
  if (chosen.size === 1) {
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
    inputs.push({
      fileId: f.fileId,
      key: f.key,
      rowCount: f.rowCount,
      sizeBytes: f.sizeBytes,
      deletesAtStart: f.deletes.clone(),
    });
    bytes += f.sizeBytes;
    const live = f.rowCount - f.deletes.size;
    liveRows += live;
    liveBytes += f.rowCount > 0 ? (f.sizeBytes * live) / f.rowCount : 0;
  }
  const bytesPerRow = liveRows > 0 ? Math.max(1, liveBytes / liveRows) : 1;
  const rowsPerOutput = Math.max(1, Math.floor(o.targetFileBytes / bytesPerRow));
  const outputCount = Math.max(1, Math.ceil(liveRows / rowsPerOutput));
  const outputs = Array.from({ length: liveRows === 0 ? 0 : outputCount }, () => {
    const fileId = o.nextFileId();
    return { fileId, key: o.keyFor(fileId) };
  });
  return { inputs, outputs, rowsPerOutput, startLsn: o.startLsn };
}

export interface CompactionDeps {
  store: ObjectStore;
  pool: ParquetWorkerPool;
  fields: NestedField[];
  keyColumns: number[];
  compression: 'zstd' | 'snappy' | 'lz4' | 'none';
}

export async function runCompaction(plan: CompactionPlan, deps: CompactionDeps): Promise<CompactionResult> {
  const { fields } = deps;
  // Gather live rows of every input, column by column, remembering where each came from.
  const columns: Value[][] = fields.map(() => []);
  const mapping = new Map<number, RowMapping>();
  let total = 0;
  for (const input of plan.inputs) {
    const table: arrow.Table = tableFromIpc(await deps.pool.decode(await deps.store.get(input.key)));
    if (table.numRows !== input.rowCount) {
      throw new Error(`${input.key}: expected ${input.rowCount} rows, found ${table.numRows}`);
    }
    const m: RowMapping = {
      outIndex: new Int32Array(input.rowCount).fill(-1),
      outPos: new Int32Array(input.rowCount).fill(-1),
    };
    let pos = 0;
    for (const batch of table.batches) {
      const cols = fields.map((f, c) => readData(f.type, batch.data.children[c]));
      for (let i = 0; i < batch.numRows; i++, pos++) {
        if (input.deletesAtStart.has(pos)) continue;
        for (let c = 0; c < fields.length; c++) columns[c].push(cols[c][i]);
        m.outIndex[pos] = Math.floor(total / plan.rowsPerOutput);
        m.outPos[pos] = total % plan.rowsPerOutput;
        total++;
      }
    }
    mapping.set(input.fileId, m);
    await yieldToLoop();
  }
  const schema = arrowSchemaFor(fields);
  const outputs: CompactionOutput[] = [];
  for (let k = 0; k < plan.outputs.length; k++) {
    const start = k * plan.rowsPerOutput;
    const end = Math.min(total, start + plan.rowsPerOutput);
    const slices = columns.map((col) => col.slice(start, end));
    const batch = buildRecordBatch(
      schema,
      fields.map((f, c) => buildData(f.type, slices[c])),
    );
    const bytes = await deps.pool.encode(tableToIpc(batch), { compression: deps.compression });
    const { fileId, key } = plan.outputs[k];
    await deps.store.put(key, bytes);
    const n = end - start;
    const stats = computeStats(fields, n, (c, i) => slices[c][i]);
    const run =
      deps.keyColumns.length > 0
        ? indexRunFor(fileId, n, (i) => keyString(deps.keyColumns.map((c) => slices[c][i])))
        : undefined;
    outputs.push({ fileId, key, rowCount: n, sizeBytes: bytes.length, stats, run });
    await yieldToLoop();
  }
  return { outputs, mapping };
}
