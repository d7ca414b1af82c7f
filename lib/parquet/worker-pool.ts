/**
 * A small pool of worker threads running parquet-wasm. Encoding and decoding are synchronous
 * and CPU-bound, so they never run on a table's event loop; callers await the result.
 * A pool of size 0 runs them in the calling thread (for a Lambda serving one request at a time).
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { imageBuffers } from '../engine/column-buffer.ts';
import type { ColumnsJob, ColumnsResult } from '../engine/column-encoder.ts';
import type { CompactionJob, CompactionJobResult } from '../engine/compaction-job.ts';
import type * as Codec from './parquet-codec.mjs';
import type { EncodeOptions } from './parquet-codec.mjs';

interface Reply {
  bytes: Uint8Array;
  stats?: ColumnsResult['stats'];
  /** A compaction's result. */
  result?: CompactionJobResult;
  /** A flushed file's index run. */
  run?: ColumnsResult['run'];
}

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (e: Error) => void;
}

type Job = {
  op: 'encode' | 'decode' | 'columns' | 'compact';
  payload: Record<string, unknown>;
  transfer: ArrayBuffer[];
};

export class ParquetWorkerPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: { job: Job; pending: Pending }[] = [];
  private readonly inFlight = new Map<Worker, { id: number; pending: Pending }>();
  /** The compaction worker (one compaction at a time), apart from the pool's. */
  private compactor: Worker | undefined;
  private compactions: Promise<void> = Promise.resolve();
  private nextId = 1;
  private closed = false;

  constructor(readonly size = Math.max(1, Math.min(4, os.availableParallelism() - 1 || 1))) {}

  private spawn(): Worker {
    const w = new Worker(new URL('./parquet-worker.mjs', import.meta.url));
    w.unref();
    w.on(
      'message',
      (msg: {
        id: number;
        ok: boolean;
        bytes?: Uint8Array;
        stats?: Reply['stats'];
        result?: CompactionJobResult;
        run?: ColumnsResult['run'];
        error?: string;
      }) => {
        const cur = this.inFlight.get(w);
        this.inFlight.delete(w);
        if (cur) {
          if (msg.ok)
            cur.pending.resolve({ bytes: msg.bytes!, stats: msg.stats, result: msg.result, run: msg.run });
          else cur.pending.reject(new Error(`parquet worker: ${msg.error}`));
        }
        // Keep the process alive only while work is in flight.
        w.unref();
        this.release(w);
      },
    );
    w.on('error', (e) => {
      const cur = this.inFlight.get(w);
      this.inFlight.delete(w);
      cur?.pending.reject(e);
      this.workers.splice(this.workers.indexOf(w), 1);
      this.pump();
    });
    this.workers.push(w);
    return w;
  }

  /** Starts every worker now (a long-lived writer), so none loads its code when work waits. */
  warm(): void {
    while (this.workers.length < this.size) this.release(this.spawn());
  }

  private release(w: Worker): void {
    this.idle.push(w);
    this.pump();
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let w = this.idle.pop();
      if (!w && this.workers.length < this.size) w = this.spawn();
      if (!w) return;
      const { job, pending } = this.queue.shift()!;
      const id = this.nextId++;
      this.inFlight.set(w, { id, pending });
      w.ref();
      w.postMessage({ id, op: job.op, ...job.payload }, job.transfer);
    }
  }

  private run(job: Job): Promise<Reply> {
    if (this.closed) return Promise.reject(new Error('parquet worker pool is closed'));
    if (this.size === 0) return this.runInline(job);
    return new Promise((resolve, reject) => {
      this.queue.push({ job, pending: { resolve, reject } });
      this.pump();
    });
  }

  private codec: Promise<typeof Codec> | undefined;
  private columnEncoder: Promise<typeof import('../engine/column-encoder.ts')> | undefined;
  private compactionJob: Promise<typeof import('../engine/compaction-job.ts')> | undefined;

  /** Size 0: in the calling thread; parquet-wasm loads on first use (a short cold start). */
  private async runInline(job: Job): Promise<Reply> {
    this.codec ??= import('./parquet-codec.mjs');
    const { encodeParquet, decodeParquet } = await this.codec;
    const p = job.payload as {
      ipc?: Uint8Array;
      parquet?: Uint8Array;
      columns?: string[];
      job?: ColumnsJob;
      compaction?: CompactionJob;
    };
    try {
      if (job.op === 'compact') {
        this.compactionJob ??= import('../engine/compaction-job.ts');
        return { bytes: new Uint8Array(0), result: (await this.compactionJob).compactFiles(p.compaction!) };
      }
      if (job.op === 'columns') {
        this.columnEncoder ??= import('../engine/column-encoder.ts');
        return (await this.columnEncoder).encodeColumns(p.job!);
      }
      return {
        bytes:
          job.op === 'encode' ? encodeParquet(p.ipc!, job.payload) : decodeParquet(p.parquet!, p.columns),
      };
    } catch (e) {
      throw new Error(`parquet: ${(e as Error).message}`);
    }
  }

  /** Arrow IPC stream bytes → Parquet bytes. The input buffer is transferred (unusable after). */
  encode(ipc: Uint8Array, options: EncodeOptions = {}): Promise<Uint8Array> {
    const own = ownBuffer(ipc);
    return this.run({
      op: 'encode',
      payload: { ipc: own, ...options },
      transfer: [own.buffer as ArrayBuffer],
    }).then((r) => r.bytes);
  }

  /**
   * Rows of MemSlice column images → Parquet bytes (and statistics when asked), see
   * column-encoder.ts. The images' buffers are transferred (unusable after); `rows` is copied.
   */
  encodeColumns(job: ColumnsJob): Promise<ColumnsResult> {
    const hashes = job.indexRun ? [job.indexRun.his.buffer, job.indexRun.los.buffer] : [];
    return this.run({
      op: 'columns',
      payload: { job },
      transfer: [...new Set([...job.images.flatMap(imageBuffers), ...(hashes as ArrayBuffer[])])],
    }).then((r) => ({ bytes: r.bytes, stats: r.stats, run: r.run }));
  }

  /**
   * A compaction's CPU work (compaction-job.ts) in a worker. The inputs' buffers are handed
   * over (copied first where a view does not own its buffer).
   */
  compact(job: CompactionJob): Promise<CompactionJobResult> {
    const owned: CompactionJob = {
      ...job,
      inputs: job.inputs.map((i) => ({ ...i, parquet: ownBuffer(i.parquet), deletes: ownBuffer(i.deletes) })),
    };
    const transfer = new Set(
      owned.inputs.flatMap((i) => [i.parquet.buffer, i.deletes.buffer] as ArrayBuffer[]),
    );
    if (this.closed) return Promise.reject(new Error('parquet worker pool is closed'));
    if (this.size === 0)
      return this.runInline({ op: 'compact', payload: { compaction: owned }, transfer: [] }).then(
        (r) => r.result!,
      );
    // A worker of its own, so flushes and tail files never queue behind a compaction. After a
    // large one it is ended: the WebAssembly memory it grew (which never shrinks) goes back
    // to the system; small ones reuse it (starting a worker costs half a second).
    const large = owned.inputs.reduce((n, i) => n + i.rowCount, 0) > LARGE_COMPACTION_ROWS;
    const run = this.compactions.then(async () => {
      this.compactor ??= new Worker(new URL('./parquet-worker.mjs', import.meta.url));
      const w = this.compactor;
      w.ref();
      try {
        return await new Promise<CompactionJobResult>((resolve, reject) => {
          const onMessage = (msg: { ok: boolean; result?: CompactionJobResult; error?: string }) => {
            cleanup();
            if (msg.ok) resolve(msg.result!);
            else reject(new Error(`compaction worker: ${msg.error}`));
          };
          const onError = (e: Error) => {
            cleanup();
            this.compactor = undefined;
            reject(e);
          };
          const onExit = (code: number) => {
            cleanup();
            this.compactor = undefined;
            reject(new Error(`compaction worker exited (${code})`));
          };
          const cleanup = () => {
            w.off('message', onMessage);
            w.off('error', onError);
            w.off('exit', onExit);
          };
          w.on('message', onMessage);
          w.on('error', onError);
          w.on('exit', onExit);
          w.postMessage({ id: 0, op: 'compact', compaction: owned }, [...transfer]);
        });
      } finally {
        w.unref();
        if (large && this.compactor === w) {
          this.compactor = undefined;
          void w.terminate();
        }
      }
    });
    this.compactions = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Parquet bytes → Arrow IPC stream bytes, optionally only some columns. The input is copied. */
  decode(parquet: Uint8Array, columns?: string[]): Promise<Uint8Array> {
    const own = parquet.slice();
    return this.run({
      op: 'decode',
      payload: { parquet: own, columns },
      transfer: [own.buffer as ArrayBuffer],
    }).then((r) => r.bytes);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const { pending } of this.queue.splice(0))
      pending.reject(new Error('parquet worker pool is closed'));
    await Promise.all(
      [...this.workers, ...(this.compactor ? [this.compactor] : [])].map((w) => w.terminate()),
    );
    this.compactor = undefined;
    this.workers.length = 0;
    this.idle.length = 0;
  }
}

/** A copy when the view does not own its whole buffer, so it can be transferred safely. */
function ownBuffer<T extends Uint8Array | Uint32Array>(bytes: T): T {
  if (
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    !(bytes.buffer instanceof SharedArrayBuffer)
  ) {
    return bytes;
  }
  return bytes.slice() as T;
}

/** A compaction of more input rows than this ends its worker afterwards (see compact). */
const LARGE_COMPACTION_ROWS = 1_000_000;

let shared: ParquetWorkerPool | undefined;

/** The process-wide pool (sized to the machine). */
export function parquetPool(): ParquetWorkerPool {
  shared ??= new ParquetWorkerPool();
  return shared;
}
