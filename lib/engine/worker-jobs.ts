/**
 * The engine's jobs in the Parquet pool's worker threads (lib/parquet/worker-pool.ts): encoding
 * a slice's columns into files (column-encoder.ts) and a compaction's CPU work
 * (compaction-job.ts). They are registered with the pool here, so its workers load them, and run
 * through these functions — in the calling thread when the pool has no threads (a Lambda).
 */
import { imageBuffers } from '../columns/column-buffer.ts';
import { ownBuffer, type ParquetWorkerPool, registerWorkerJob } from '../parquet/worker-pool.ts';
import type { TableSchema } from '../schema/table-schema.ts';
import { type DecodedParts, operationsFromParts } from '../txn/decode-job.ts';
import type { Operations } from '../txn/op-batch.ts';
import { type ColumnsJob, type ColumnsResult, type EncodedGroup, encodeColumns } from './column-encoder.ts';
import { type CompactionJob, type CompactionJobResult, compactFiles } from './compaction-job.ts';

registerWorkerJob('columns', () => new URL('./column-encoder.ts', import.meta.url).href, true);
registerWorkerJob('compact', () => new URL('./compaction-job.ts', import.meta.url).href);
registerWorkerJob('decode-request', () => new URL('../txn/decode-job.ts', import.meta.url).href, true);

async function inline<T>(pool: ParquetWorkerPool, run: () => Promise<T>): Promise<T> {
  pool.checkOpen();
  try {
    return await run();
  } catch (e) {
    throw new Error(`parquet: ${(e as Error).message}`);
  }
}

/**
 * Rows of MemSlice column images → Parquet bytes (and statistics when asked), see
 * column-encoder.ts. The images' buffers are transferred (unusable after); `rows` is copied.
 */
export async function encodeColumnsIn(
  pool: ParquetWorkerPool,
  job: ColumnsJob,
): Promise<ColumnsResult & { groups?: EncodedGroup[] }> {
  if (pool.inline) return inline(pool, () => encodeColumns(job));
  const hashes = job.indexRun ? [job.indexRun.his.buffer, job.indexRun.los.buffer] : [];
  const r = await pool.runJob('columns', { job }, [
    ...new Set([...job.images.flatMap(imageBuffers), ...(hashes as ArrayBuffer[])]),
  ]);
  return r as unknown as ColumnsResult & { groups?: EncodedGroup[] };
}

/**
 * A compaction's CPU work (compaction-job.ts) on the pool's worker for long jobs. The inputs'
 * buffers are handed over (copied first where a view does not own its buffer).
 */
export async function compactIn(pool: ParquetWorkerPool, job: CompactionJob): Promise<CompactionJobResult> {
  const owned: CompactionJob = {
    ...job,
    inputs: job.inputs.map((i) => ({
      ...i,
      parquet: ownBuffer(i.parquet),
      deletes: ownBuffer(i.deletes),
      hashes: i.hashes && {
        his: ownBuffer(i.hashes.his),
        los: ownBuffer(i.hashes.los),
        has: ownBuffer(i.hashes.has),
      },
    })),
  };
  if (pool.inline) return inline(pool, () => compactFiles(owned));
  const transfer = owned.inputs.flatMap(
    (i) =>
      [
        i.parquet.buffer,
        i.deletes.buffer,
        ...(i.hashes ? [i.hashes.his.buffer, i.hashes.los.buffer, i.hashes.has.buffer] : []),
      ] as ArrayBuffer[],
  );
  const r = await pool.runLong('compact', { compaction: owned }, transfer);
  return r.result as CompactionJobResult;
}

/** A name per schema object, for the worker's cache of decoding plans (decode-job.ts). */
const schemaKeys = new WeakMap<TableSchema, string>();
let schemaSeq = 0;

/**
 * A JSON transaction decoded on one of the pool's workers (decode-job.ts); undefined when the
 * worker could not (the caller decodes it itself, for the error). `bytes` is copied, unless it
 * is in shared memory (the local server keeps large bodies there).
 */
export async function decodeRequestIn(
  pool: ParquetWorkerPool,
  schema: TableSchema,
  bytes: Uint8Array,
  maxOps: number,
): Promise<Operations | undefined> {
  let schemaKey = schemaKeys.get(schema);
  if (!schemaKey) {
    schemaKey = String(++schemaSeq);
    schemaKeys.set(schema, schemaKey);
  }
  const parts = await pool.runJob('decode-request', { job: { schemaKey, schema, bytes, maxOps } }, []);
  return operationsFromParts(schema, parts as unknown as DecodedParts);
}
