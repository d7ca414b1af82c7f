/**
 * The CPU part of a compaction, run in a Parquet worker thread (or inline by a pool of size 0):
 * decode the inputs a row group at a time, take their live rows, stream them into outputs of
 * `rowsPerOutput` rows, compute each output's column statistics, and build its index run from
 * the key hashes the index had for those rows (hashing keys only where it had none). The result says,
 * for every input row, where it went. Inputs and outputs travel as bytes; nothing here does I/O.
 */
import type * as arrow from 'apache-arrow';
import {
  arrowSchemaFor,
  buildRecordBatch,
  readData,
  tableFromIpc,
  tableToIpc,
  takeData,
} from '../parquet/arrow-convert.ts';
import { encodeParquetStream, openParquet, wasmBytes } from '../parquet/parquet-codec.mjs';
import { inSchema, projectBatch } from '../parquet/schema-projection.ts';
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
  /** Input row groups decoded (one at a time; those wholly deleted are skipped). */
  rowGroupsRead: number;
  /** The thread's WebAssembly memory afterwards (its high-water mark: it never shrinks). */
  wasmBytes: number;
}

/** The buffers a result can hand over without copying. */
export function resultBuffers(r: CompactionJobResult): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const o of r.outputs) {
    out.push(o.bytes.buffer as ArrayBuffer);
    if (o.run) out.push(...runPartsBuffers(o.run));
  }
  return [...new Set(out)];
}

const EMPTY = new Uint8Array(0);

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

/** Where a compaction's live rows stand: how many so far, their key hashes, inputs read. */
interface LiveRows {
  total: number;
  his: Uint32Array;
  los: Uint32Array;
  rowGroupsRead: number;
}

/**
 * The live rows of every input in order, one decoded row group at a time, as batches in the
 * table's schema, in that order (the caller knows where each row goes from the deletes:
 * compactor.ts's RowMapping); fills in the rows' key hashes on the way. An input is opened when
 * it is reached.
 */
async function* liveBatches(
  job: CompactionJob,
  schema: arrow.Schema,
  live: LiveRows,
): AsyncGenerator<arrow.RecordBatch> {
  for (const input of job.inputs) {
    const file = await openParquet(input.parquet);
    // The reader holds its own copy: the job's is let go (the inputs are this job's to consume).
    input.parquet = EMPTY;
    try {
      const rows = file.rowGroupRows.reduce((a, b) => a + b, 0);
      if (rows !== input.rowCount) {
        throw new Error(`file ${input.fileId}: expected ${input.rowCount} rows, found ${rows}`);
      }
      let nextDelete = 0;
      let pos = 0;
      for (const [g, groupRows] of file.rowGroupRows.entries()) {
        const end = pos + groupRows;
        // A row group whose rows are all deleted is not decoded.
        let dead = 0;
        while (nextDelete + dead < input.deletes.length && input.deletes[nextDelete + dead] < end) dead++;
        if (dead === groupRows) {
          nextDelete += dead;
          pos = end;
          continue;
        }
        live.rowGroupsRead++;
        for (const batch of tableFromIpc(await file.readRowGroup(g)).batches) {
          const taken = takeLive(job, schema, batch, input, live, pos, nextDelete);
          pos += batch.numRows;
          nextDelete = taken.nextDelete;
          if (taken.batch) yield taken.batch;
        }
        if (pos !== end)
          throw new Error(`file ${input.fileId}: row group ${g} did not hold its ${groupRows} rows`);
      }
    } finally {
      file.free();
    }
  }
}

/**
 * The live rows of one decoded batch of an input (its rows at positions `pos`…), in the
 * table's schema; records where they go and their key hashes.
 */
function takeLive(
  job: CompactionJob,
  schema: arrow.Schema,
  batch: arrow.RecordBatch,
  input: CompactionJobInput,
  live: LiveRows,
  pos: number,
  nextDelete: number,
): { batch?: arrow.RecordBatch; nextDelete: number } {
  const { fields } = job;
  const { deletes, hashes: known } = input;
  const first = live.total;
  const keep: number[] = [];
  // A kept row the index holds no hash for (it should hold all): the batch's keys are hashed.
  let unhashed = false;
  for (let i = 0; i < batch.numRows; i++, pos++) {
    if (nextDelete < deletes.length && deletes[nextDelete] === pos) {
      nextDelete++;
      continue;
    }
    if (deletes.length > 0) keep.push(i);
    if (known?.has[pos] === 1) {
      live.his[live.total] = known.his[pos];
      live.los[live.total] = known.los[pos];
    } else unhashed = true;
    live.total++;
  }
  if (live.total === first) return { nextDelete };
  // Always re-wrapped in the table's own schema (field ids); the decoded columns are reused as
  // they are when every row stays and their types are the table's.
  const all = deletes.length === 0 || keep.length === batch.numRows;
  // An input written before a schema change is read in the current schema (by field id).
  const columns = inSchema(batch, fields) ? batch.data.children : projectBatch(batch, fields);
  const taken =
    all && fields.every((f, c) => reusable(f, schema.fields[c].type, columns[c].type))
      ? buildRecordBatch(schema, columns)
      : buildRecordBatch(
          schema,
          fields.map((f, c) => takeData(f.type, columns[c], all ? iota(batch.numRows) : keep)),
        );
  if (job.keyColumns.length > 0 && unhashed) {
    const keyCols = job.keyColumns.map((c) => readData(fields[c].type, taken.data.children[c]));
    for (let i = 0; i < taken.numRows; i++) {
      hashKey(keyString(keyCols.map((col) => col[i])));
      live.his[first + i] = hashHi();
      live.los[first + i] = hashLo();
    }
  }
  return { batch: taken, nextDelete };
}

/** Takes batches of at most a given number of rows from a stream of batches. */
class BatchCutter {
  private current: arrow.RecordBatch | undefined;
  private offset = 0;
  constructor(private readonly source: AsyncIterator<arrow.RecordBatch>) {}

  /** The next rows, at most `max`; undefined when the stream has ended. */
  async take(max: number): Promise<arrow.RecordBatch | undefined> {
    while (!this.current || this.offset === this.current.numRows) {
      const next = await this.source.next();
      if (next.done) return undefined;
      this.current = next.value;
      this.offset = 0;
    }
    const batch = this.current;
    const n = Math.min(max, batch.numRows - this.offset);
    const piece =
      this.offset === 0 && n === batch.numRows ? batch : batch.slice(this.offset, this.offset + n);
    this.offset += n;
    return piece;
  }
}

/**
 * Inputs are read a row group at a time and outputs written a row group at a time (each
 * output's Parquet bytes grow as it goes), so the rows held decoded are about two row groups'
 * worth whatever the inputs' size: the compaction's memory is its inputs' and outputs' bytes.
 */
export async function compactFiles(job: CompactionJob): Promise<CompactionJobResult> {
  const { fields, rowsPerOutput } = job;
  const schema = arrowSchemaFor(fields);
  const hasKey = job.keyColumns.length > 0;
  const liveRows = job.inputs.reduce((n, i) => n + i.rowCount - i.deletes.length, 0);
  const live: LiveRows = {
    total: 0,
    his: new Uint32Array(hasKey ? liveRows : 0),
    los: new Uint32Array(hasKey ? liveRows : 0),
    rowGroupsRead: 0,
  };
  const cutter = new BatchCutter(liveBatches(job, schema, live));
  const short = () => new Error(`compaction: expected ${liveRows} live rows, found fewer`);
  const outputs: CompactionJobResult['outputs'] = [];
  for (let k = 0; k < job.outputs.length; k++) {
    const start = k * rowsPerOutput;
    const n = Math.min(liveRows, start + rowsPerOutput) - start;
    const first = await cutter.take(n);
    if (!first) throw short();
    let left = n;
    const stats = fields.map(() => undefined as ColumnStats | undefined);
    const next = async (): Promise<Uint8Array | undefined> => {
      const piece = left === n ? first : left > 0 ? await cutter.take(left) : undefined;
      if (!piece) {
        if (left > 0) throw short();
        return undefined;
      }
      left -= piece.numRows;
      fields.forEach((f, c) => {
        stats[c] = mergeStats(stats[c], dataStats(f, piece.data.children[c]));
      });
      return tableToIpc(piece);
    };
    const bytes = await encodeParquetStream(next, {
      compression: job.compression,
      // The same dictionary choice as a flushed data file (dictionary-choice.ts), made on the
      // output's first rows.
      plainColumns: mostlyDistinctColumns(fields, (c, i) => first.getChildAt(c)?.get(i), first.numRows),
    });
    if (left > 0) throw short();
    const run = hasKey
      ? IndexRun.forFile(
          job.outputs[k],
          live.his.subarray(start, start + n),
          live.los.subarray(start, start + n),
        ).toParts()
      : undefined;
    outputs.push({
      rowCount: n,
      bytes,
      stats: new Map(fields.map((f, c) => [f.id, stats[c] ?? { valueCount: 0, nullCount: 0 }])),
      run,
    });
  }
  if (await cutter.take(1)) throw new Error(`compaction: more than the expected ${liveRows} live rows`);
  return { outputs, rowGroupsRead: live.rowGroupsRead, wasmBytes: wasmBytes() };
}
