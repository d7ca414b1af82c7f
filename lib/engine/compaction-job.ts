/**
 * The CPU part of a compaction, run in a Parquet worker thread (or inline by a pool of size 0):
 * decode every input, take its live rows, cut them into outputs of `rowsPerOutput` rows,
 * compute each output's column statistics, encode it, and build its index run from the key
 * hashes the index had for those rows (hashing keys only where it had none). The result says,
 * for every input row, where it went. Inputs and outputs travel as bytes; nothing here does I/O.
 */
import * as arrow from 'apache-arrow';
import {
  arrowSchemaFor,
  buildRecordBatch,
  readData,
  tableFromIpc,
  tableToIpc,
  takeData,
} from '../parquet/arrow-convert.ts';
import { decodeParquet, encodeParquet } from '../parquet/parquet-codec.mjs';
import type { NestedField } from '../schema/iceberg-type.ts';
import { keyString } from '../schema/values.ts';
import { type ColumnStats, dataStats, mergeStats, NUMERIC_KINDS } from './column-stats.ts';
import { mostlyDistinctColumns } from './dictionary-choice.ts';
import type { RowHashes } from './file-index.ts';
import { IndexRun, iota, type RunParts, runPartsBuffers } from './index-run.ts';
import { hashHi, hashKey, hashLo } from './key-hash.ts';

export interface CompactionJobInput {
  fileId: number;
  rowCount: number;
  parquet: Uint8Array;
  /** Deleted positions when the plan was made, ascending. */
  deletes: Uint32Array;
  /** The index's key hashes of the file's rows, by position. */
  hashes?: RowHashes;
}

export interface CompactionJob {
  fields: NestedField[];
  keyColumns: number[];
  compression: 'zstd' | 'snappy' | 'lz4' | 'none';
  rowsPerOutput: number;
  /** The output files' ids, in order. */
  outputs: number[];
  inputs: CompactionJobInput[];
}

export interface CompactionJobResult {
  outputs: { rowCount: number; bytes: Uint8Array; stats: Map<number, ColumnStats>; run?: RunParts }[];
  /** Per input: output index and position of every row, -1 where it was deleted. */
  mapping: { fileId: number; outIndex: Int32Array; outPos: Int32Array }[];
}

/** The buffers a result can hand over without copying. */
export function resultBuffers(r: CompactionJobResult): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const o of r.outputs) {
    out.push(o.bytes.buffer as ArrayBuffer);
    if (o.run) out.push(...runPartsBuffers(o.run));
  }
  for (const m of r.mapping) out.push(m.outIndex.buffer as ArrayBuffer, m.outPos.buffer as ArrayBuffer);
  return [...new Set(out)];
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

export function compactFiles(job: CompactionJob): CompactionJobResult {
  const { fields, rowsPerOutput } = job;
  const schema = arrowSchemaFor(fields);
  const hasKey = job.keyColumns.length > 0;
  // Live rows of every input as Arrow batches (a file without deletes as it is; otherwise taken
  // row by row on raw buffers), with the key hashes of those rows for the outputs' index runs.
  const batches: arrow.RecordBatch[] = [];
  const liveRows = job.inputs.reduce((n, i) => n + i.rowCount - i.deletes.length, 0);
  const his = new Uint32Array(hasKey ? liveRows : 0);
  const los = new Uint32Array(hasKey ? liveRows : 0);
  const mapping: CompactionJobResult['mapping'] = [];
  let total = 0;
  for (const input of job.inputs) {
    const table: arrow.Table = tableFromIpc(decodeParquet(input.parquet));
    if (table.numRows !== input.rowCount) {
      throw new Error(`file ${input.fileId}: expected ${input.rowCount} rows, found ${table.numRows}`);
    }
    const m = {
      fileId: input.fileId,
      outIndex: new Int32Array(input.rowCount).fill(-1),
      outPos: new Int32Array(input.rowCount).fill(-1),
    };
    const known = input.hashes;
    const deletes = input.deletes;
    let nextDelete = 0;
    let pos = 0;
    for (const batch of table.batches) {
      const first = total;
      const keep: number[] = [];
      // A kept row the index holds no hash for (it should hold all): the batch's keys are hashed.
      let unhashed = false;
      for (let i = 0; i < batch.numRows; i++, pos++) {
        if (nextDelete < deletes.length && deletes[nextDelete] === pos) {
          nextDelete++;
          continue;
        }
        if (deletes.length > 0) keep.push(i);
        m.outIndex[pos] = Math.floor(total / rowsPerOutput);
        m.outPos[pos] = total % rowsPerOutput;
        if (known?.has[pos] === 1) {
          his[total] = known.his[pos];
          los[total] = known.los[pos];
        } else unhashed = true;
        total++;
      }
      if (total === first) continue;
      // Always re-wrapped in the table's own schema (field ids); the decoded columns are reused
      // as they are when every row stays and their types are the table's.
      const all = deletes.length === 0 || keep.length === batch.numRows;
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
        const keyCols = job.keyColumns.map((c) => readData(fields[c].type, taken.data.children[c]));
        for (let i = 0; i < taken.numRows; i++) {
          hashKey(keyString(keyCols.map((col) => col[i])));
          his[first + i] = hashHi();
          los[first + i] = hashLo();
        }
      }
    }
    mapping.push(m);
  }
  if (total !== liveRows) throw new Error(`compaction: expected ${liveRows} live rows, found ${total}`);
  // Cut the stream of batches into outputs of rowsPerOutput rows.
  const outputs: CompactionJobResult['outputs'] = [];
  let b = 0;
  let bOffset = 0;
  for (let k = 0; k < job.outputs.length; k++) {
    const start = k * rowsPerOutput;
    const n = Math.min(total, start + rowsPerOutput) - start;
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
    const table = new arrow.Table(parts);
    const bytes = encodeParquet(tableToIpc(table), {
      compression: job.compression,
      // The same dictionary choice as a flushed data file (dictionary-choice.ts).
      plainColumns: mostlyDistinctColumns(fields, (c, i) => table.getChildAt(c)?.get(i), n),
    });
    const run = hasKey
      ? IndexRun.forFile(
          job.outputs[k],
          his.subarray(start, start + n),
          los.subarray(start, start + n),
        ).toParts()
      : undefined;
    outputs.push({ rowCount: n, bytes, stats, run });
  }
  return { outputs, mapping };
}
