/**
 * Compaction: merges small data files and files with many deleted rows into files near the
 * target size. The plan is made on the table's loop (which files, their deletion vectors at
 * that moment); reading, rewriting and uploading run off it. The result carries, for every
 * input row, where it went, so deletes that arrive meanwhile can follow their rows.
 */

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import * as arrow from 'apache-arrow';
import type { RoaringBitmap64 } from '../iceberg/roaring.ts';
import type { Lsn } from '../lsn.ts';
import {
  arrowSchemaFor,
  buildRecordBatch,
  readData,
  tableFromIpc,
  tableToIpc,
  takeData,
} from '../parquet/arrow-convert.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import type { NestedField } from '../schema/iceberg-type.ts';
import { keyString } from '../schema/values.ts';
import type { ObjectStore } from '../store/object-store.ts';
import { type ColumnStats, dataStats, mergeStats, NUMERIC_KINDS } from './column-stats.ts';
import type { DataFile } from './data-file.ts';
import { mostlyDistinctColumns } from './dictionary-choice.ts';
import type { RowHashes } from './file-index.ts';
import { IndexRun, iota } from './index-run.ts';
import { hashHi, hashKey, hashLo } from './key-hash.ts';

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
  /** Writes are keeping the loop busy: small files wait until there are 4 × minSmallFiles. */
  busy?: boolean;
  /** Called when small files that would be merged now wait because of `busy`. */
  onDeferred?: () => void;
  nextFileId: () => number;
  keyFor: (fileId: number) => string;
  startLsn: Lsn;
}

/** Picks files to compact, or undefined when nothing is worth doing. */
export function planCompaction(files: DataFile[], o: PlanOptions): CompactionPlan | undefined {
  const small = files.filter((f) => f.sizeBytes < o.targetFileBytes / 2);
  const deleted = files.filter((f) => f.rowCount > 0 && f.deletes.size / f.rowCount >= o.deletedRatio);
  const chosen = new Set<DataFile>(deleted);
  const enoughSmall = small.length >= (o.busy ? 4 * o.minSmallFiles : o.minSmallFiles);
  if (enoughSmall || (deleted.length > 0 && small.length > 0)) for (const f of small) chosen.add(f);
  else if (o.busy && small.length >= o.minSmallFiles) o.onDeferred?.();
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

/** Column types whose decoded Arrow data is taken as it is (one value per slot, or UTF-8). */
const REUSABLE = new Set([...NUMERIC_KINDS, 'string']);

/**
 * Whether decoded data of a column can stand in the table's batch as it is: a simple type and
 * the same Arrow type and layout (a decoded Int64 can differ from ours in what `compareTypes`
 * looks at while the values are the same BigInt64Array).
 */
function reusable(f: NestedField, ours: arrow.DataType, decoded: arrow.DataType): boolean {
  if (!REUSABLE.has(f.type.kind)) return false;
  return (
    String(ours) === String(decoded) && ours.ArrayType === decoded.ArrayType && ours.typeId === decoded.typeId
  );
}

export interface CompactionDeps {
  store: ObjectStore;
  pool: ParquetWorkerPool;
  fields: NestedField[];
  keyColumns: number[];
  compression: 'zstd' | 'snappy' | 'lz4' | 'none';
  /** Key hashes of the inputs' rows from the index, taken when the plan was made. */
  rowHashes?: Map<number, RowHashes>;
}

export async function runCompaction(plan: CompactionPlan, deps: CompactionDeps): Promise<CompactionResult> {
  const { fields } = deps;
  const schema = arrowSchemaFor(fields);
  const hasKey = deps.keyColumns.length > 0;
  // Live rows of every input as Arrow batches (a file without deletes as it is; otherwise taken
  // row by row on raw buffers), with the key hashes of those rows for the outputs' index runs.
  const batches: arrow.RecordBatch[] = [];
  const liveRows = plan.inputs.reduce((n, i) => n + i.rowCount - i.deletesAtStart.size, 0);
  const his = new Uint32Array(hasKey ? liveRows : 0);
  const los = new Uint32Array(hasKey ? liveRows : 0);
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
    const known = deps.rowHashes?.get(input.fileId);
    const noDeletes = input.deletesAtStart.isEmpty();
    let pos = 0;
    for (const batch of table.batches) {
      const first = total;
      const keep: number[] = [];
      // A kept row the index holds no hash for (it should hold all): the batch's keys are hashed.
      let unhashed = false;
      for (let i = 0; i < batch.numRows; i++, pos++) {
        if (!noDeletes && input.deletesAtStart.has(pos)) continue;
        if (!noDeletes) keep.push(i);
        m.outIndex[pos] = Math.floor(total / plan.rowsPerOutput);
        m.outPos[pos] = total % plan.rowsPerOutput;
        if (known?.has[pos] === 1) {
          his[total] = known.his[pos];
          los[total] = known.los[pos];
        } else unhashed = true;
        total++;
      }
      if (total === first) continue;
      // Always re-wrapped in the table's own schema (field ids); the decoded columns are reused
      // as they are when every row stays and their types are the table's.
      const all = noDeletes || keep.length === batch.numRows;
      const taken =
        all && fields.every((f, c) => reusable(f, schema.fields[c].type, batch.data.children[c].type))
          ? buildRecordBatch(schema, batch.data.children)
          : buildRecordBatch(
              schema,
              fields.map((f, c) =>
                takeData(f.type, batch.data.children[c], all ? iota(batch.numRows) : keep),
              ),
            );
      batches.push(taken);
      if (hasKey && unhashed) {
        const keyCols = deps.keyColumns.map((c) => readData(fields[c].type, taken.data.children[c]));
        for (let i = 0; i < taken.numRows; i++) {
          hashKey(keyString(keyCols.map((col) => col[i])));
          his[first + i] = hashHi();
          los[first + i] = hashLo();
        }
      }
    }
    mapping.set(input.fileId, m);
    await yieldToLoop();
  }
  if (total !== liveRows) throw new Error(`compaction: expected ${liveRows} live rows, found ${total}`);
  // Cut the stream of batches into outputs of rowsPerOutput rows.
  const outputs: CompactionOutput[] = [];
  let b = 0;
  let bOffset = 0;
  for (let k = 0; k < plan.outputs.length; k++) {
    const start = k * plan.rowsPerOutput;
    const n = Math.min(total, start + plan.rowsPerOutput) - start;
    const parts: arrow.RecordBatch[] = [];
    let need = n;
    while (need > 0) {
      const batch = batches[b];
      const take = Math.min(need, batch.numRows - bOffset);
      parts.push(bOffset === 0 && take === batch.numRows ? batch : batch.slice(bOffset, bOffset + take));
      need -= take;
      bOffset += take;
      if (bOffset === batch.numRows) {
        b++;
        bOffset = 0;
      }
    }
    const stats = new Map<number, ColumnStats>();
    fields.forEach((f, c) => {
      let st: ColumnStats | undefined;
      for (const p of parts) st = mergeStats(st, dataStats(f, p.data.children[c]));
      stats.set(f.id, st ?? { valueCount: 0, nullCount: 0 });
    });
    const { fileId, key } = plan.outputs[k];
    const table = new arrow.Table(parts);
    const bytes = await deps.pool.encode(tableToIpc(table), {
      compression: deps.compression,
      // The same dictionary choice as a flushed data file (dictionary-choice.ts).
      plainColumns: mostlyDistinctColumns(fields, (c, i) => table.getChildAt(c)?.get(i), n),
    });
    await deps.store.put(key, bytes);
    const run = hasKey
      ? IndexRun.forFile(fileId, his.subarray(start, start + n), los.subarray(start, start + n))
      : undefined;
    outputs.push({ fileId, key, rowCount: n, sizeBytes: bytes.length, stats, run });
    await yieldToLoop();
  }
  return { outputs, mapping };
}
