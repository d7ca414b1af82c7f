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
  buildData,
  buildRecordBatch,
  readData,
  tableFromIpc,
  tableToIpc,
  takeData,
} from '../columns/arrow-convert.ts';
import { type ColumnStats, dataStats, mergeStats, NUMERIC_KINDS } from '../columns/column-stats.ts';
import { encodeParquetStream, openParquet, wasmBytes } from '../parquet/parquet-codec.mjs';
import { inSchema, projectBatch } from '../parquet/schema-projection.ts';
import type { NestedField } from '../schema/iceberg-type.ts';
import { KeyHasher } from '../schema/key-hash.ts';
import type { PartitionTuple } from '../schema/partition-spec.ts';
import type { Value } from '../schema/values.ts';
import { keyString } from '../schema/values.ts';
import { mostlyDistinctColumns } from './dictionary-choice.ts';
import type { RowHashes } from './file-index.ts';
import { iota } from './hash-sort.ts';
import { IndexRun, type RunParts, runPartsBuffers } from './index-run.ts';
import { hasLayout, layoutRows, type RowLayout } from './row-layout.ts';

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
  /** The output files' ids, in order (none for a laid-out job: its outputs name file 0). */
  outputs: number[];
  inputs: CompactionJobInput[];
  /** A partitioned or sorted table: outputs per partition, rows in order (see compactLaidOut). */
  layout?: RowLayout;
}

/** Where each live row of a laid-out compaction went: output index and position, by live row. */
export interface Placement {
  output: Int32Array;
  pos: Uint32Array;
}

export interface CompactionJobResult {
  outputs: {
    rowCount: number;
    bytes: Uint8Array;
    stats: Map<number, ColumnStats>;
    run?: RunParts;
    partition?: PartitionTuple;
  }[];
  /** A laid-out job: where each live row (in input order) went. */
  placement?: Placement;
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
  if (r.placement) out.push(r.placement.output.buffer as ArrayBuffer, r.placement.pos.buffer as ArrayBuffer);
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
    const hasher = new KeyHasher();
    for (let i = 0; i < taken.numRows; i++) {
      hasher.hash(keyString(keyCols.map((col) => col[i])));
      live.his[first + i] = hasher.hi;
      live.los[first + i] = hasher.lo;
    }
  }
  return { batch: taken, nextDelete };
}

/** A job's live row count and the (empty) record of their key hashes, to fill as they are read. */
function liveRowsOf(job: CompactionJob): { hasKey: boolean; liveRows: number; live: LiveRows } {
  const hasKey = job.keyColumns.length > 0;
  const liveRows = job.inputs.reduce((n, i) => n + i.rowCount - i.deletes.length, 0);
  return {
    hasKey,
    liveRows,
    live: {
      total: 0,
      his: new Uint32Array(hasKey ? liveRows : 0),
      los: new Uint32Array(hasKey ? liveRows : 0),
      rowGroupsRead: 0,
    },
  };
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
  if (hasLayout(job.layout)) return compactLaidOut(job, job.layout);
  const { fields, rowsPerOutput } = job;
  const schema = arrowSchemaFor(fields);
  const { hasKey, liveRows, live } = liveRowsOf(job);
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

/** Rows per Arrow batch handed to the Parquet writer by a laid-out compaction. */
const PIECE_ROWS = 65_536;

/**
 * A partitioned or sorted table's compaction: every live row of the inputs is held decoded (as
 * one batch per column, built a column at a time), grouped by partition of the current spec and
 * sorted (row-layout.ts), then written as outputs of at most `rowsPerOutput` rows per partition.
 * Memory is the inputs' rows decoded, which compactionMemory counts for such plans.
 */
async function compactLaidOut(job: CompactionJob, layout: RowLayout): Promise<CompactionJobResult> {
  const { fields, rowsPerOutput } = job;
  const schema = arrowSchemaFor(fields);
  const { hasKey, liveRows, live } = liveRowsOf(job);
  const batches: arrow.RecordBatch[] = [];
  for await (const b of liveBatches(job, schema, live)) batches.push(b);
  if (live.total !== liveRows)
    throw new Error(`compaction: expected ${liveRows} live rows, found ${live.total}`);
  // Each column as one Data over all live rows (values read a column at a time).
  const valuesOf = (c: number): Value[] => {
    const out: Value[] = [];
    for (const b of batches) for (const v of readData(fields[c].type, b.data.children[c])) out.push(v);
    return out;
  };
  const sourceValues = new Map<number, Value[]>();
  const groups = layoutRows(layout, fields, liveRows, (c, i) => {
    let col = sourceValues.get(c);
    if (!col) {
      col = valuesOf(c);
      sourceValues.set(c, col);
    }
    return col[i];
  });
  const whole = fields.map((f, c) => {
    const data = buildData(f.type, sourceValues.get(c) ?? valuesOf(c));
    sourceValues.delete(c);
    return data;
  });
  batches.length = 0;
  const placement: Placement = { output: new Int32Array(liveRows).fill(-1), pos: new Uint32Array(liveRows) };
  const outputs: CompactionJobResult['outputs'] = [];
  for (const g of groups) {
    for (let start = 0; start < g.rows.length; start += rowsPerOutput) {
      const rows = g.rows.subarray(start, Math.min(g.rows.length, start + rowsPerOutput));
      const k = outputs.length;
      for (let i = 0; i < rows.length; i++) {
        placement.output[rows[i]] = k;
        placement.pos[rows[i]] = i;
      }
      const stats = fields.map(() => undefined as ColumnStats | undefined);
      let at = 0;
      const next = async (): Promise<Uint8Array | undefined> => {
        if (at >= rows.length) return undefined;
        const idx = rows.subarray(at, at + PIECE_ROWS);
        at += idx.length;
        const piece = buildRecordBatch(
          schema,
          fields.map((f, c) => takeData(f.type, whole[c], idx)),
        );
        fields.forEach((f, c) => {
          stats[c] = mergeStats(stats[c], dataStats(f, piece.data.children[c]));
        });
        return tableToIpc(piece);
      };
      const head = buildRecordBatch(
        schema,
        fields.map((f, c) => takeData(f.type, whole[c], rows.subarray(0, Math.min(rows.length, 4096)))),
      );
      const bytes = await encodeParquetStream(next, {
        compression: job.compression,
        plainColumns: mostlyDistinctColumns(fields, (c, i) => head.getChildAt(c)?.get(i), head.numRows),
      });
      let run: RunParts | undefined;
      if (hasKey) {
        const his = new Uint32Array(rows.length);
        const los = new Uint32Array(rows.length);
        for (let i = 0; i < rows.length; i++) {
          his[i] = live.his[rows[i]];
          los[i] = live.los[rows[i]];
        }
        run = IndexRun.forFile(0, his, los).toParts();
      }
      outputs.push({
        rowCount: rows.length,
        bytes,
        stats: new Map(fields.map((f, c) => [f.id, stats[c] ?? { valueCount: 0, nullCount: 0 }])),
        run,
        partition: g.partition,
      });
    }
  }
  return { outputs, placement, rowGroupsRead: live.rowGroupsRead, wasmBytes: wasmBytes() };
}

/** This module as a job of the pool's workers (worker-jobs.ts): a message `{ compaction }`. */
export const workerJob = {
  run: async (message: { compaction: CompactionJob }) => ({ result: await compactFiles(message.compaction) }),
  transfer: (r: { result: CompactionJobResult }) => resultBuffers(r.result),
};
