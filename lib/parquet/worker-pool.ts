/**
 * A small pool of worker threads running parquet-wasm. Encoding and decoding are synchronous
 * and CPU-bound, so they never run on a table's event loop; callers await the result.
 * A pool of size 0 runs them in the calling thread (for a Lambda serving one request at a time).
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { imageBuffers } from '../columns/column-buffer.ts';
import type { ColumnsJob, ColumnsResult, EncodedGroup } from '../engine/column-encoder.ts';
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
  /** A laid-out flush's files (column-encoder.ts). */
  groups?: EncodedGroup[];
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

/**
 * The worker's script: `MOONLINK_PARQUET_WORKER` where a bundle says where its compiled worker
 * is (the writer's bundle sets it, infra/build-writer.mjs), else the worker beside this module.
 */
function workerScript(): string | URL {
  return process.env.MOONLINK_PARQUET_WORKER ?? new URL('./parquet-worker.mjs', import.meta.url);
}

export class ParquetWorkerPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: { job: Job; pending: Pending }[] = [];
  private readonly inFlight = new Map<Worker, { id: number; pending: Pending }>();
  /** The compaction worker (one compaction at a time), apart from the pool's. */
  private compactor: Worker | undefined;
  /** A compaction is running in the compactor. */
  private compacting = false;
  private compactions: Promise<void> = Promise.resolve();
  private nextId = 1;
  private closed = false;

  /** Memory each worker said it held after its last job (heap + external, WebAssembly included). */
  private readonly held = new Map<Worker, number>();

  constructor(readonly size = Math.max(1, Math.min(4, os.availableParallelism() - 1 || 1))) {}

  /**
   * What the workers hold between jobs, as they last reported it (their WebAssembly memory
   * never shrinks, and a worker's garbage waits for its next collection), for status.
   */
  memoryBytes(): number {
    let bytes = 0;
    for (const b of this.held.values()) bytes += b;
    return bytes;
  }

  private spawn(): Worker {
    const w = new Worker(workerScript());
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
        groups?: EncodedGroup[];
        error?: string;
        held?: number;
      }) => {
        if (msg.held !== undefined) {
          // Sent after each reply: what the worker holds now.
          this.held.set(w, msg.held);
          return;
        }
        const cur = this.inFlight.get(w);
        this.inFlight.delete(w);
        if (cur) {
          if (msg.ok)
            cur.pending.resolve({
              bytes: msg.bytes!,
              stats: msg.stats,
              result: msg.result,
              run: msg.run,
              groups: msg.groups,
            });
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
      this.held.delete(w);
      this.pump();
    });
    this.workers.push(w);
    return w;
  }

  private spawnCompactor(): Worker {
    const w = new Worker(workerScript());
    w.on('message', (msg: { held?: number }) => {
      if (msg.held === undefined) return;
      this.held.set(w, msg.held);
      // Its WebAssembly memory never shrinks: a worker that kept much after a job is ended.
      if (msg.held > HEAVY_WORKER_BYTES && this.compactor === w && !this.compacting) this.endCompactor(w);
    });
    return w;
  }

  /** The compactor is no longer the pool's (it failed, exited or is being ended). */
  private forgetCompactor(w: Worker): void {
    if (this.compactor === w) this.compactor = undefined;
    this.held.delete(w);
  }

  private endCompactor(w: Worker): void {
    this.forgetCompactor(w);
    void w.terminate();
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
        return {
          bytes: new Uint8Array(0),
          result: await (await this.compactionJob).compactFiles(p.compaction!),
        };
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
  encodeColumns(job: ColumnsJob): Promise<ColumnsResult & { groups?: EncodedGroup[] }> {
    const hashes = job.indexRun ? [job.indexRun.his.buffer, job.indexRun.los.buffer] : [];
    return this.run({
      op: 'columns',
      payload: { job },
      transfer: [...new Set([...job.images.flatMap(imageBuffers), ...(hashes as ArrayBuffer[])])],
    }).then((r) => ({ bytes: r.bytes, stats: r.stats, run: r.run, groups: r.groups }));
  }

  /**
   * A compaction's CPU work (compaction-job.ts) in a worker. The inputs' buffers are handed
   * over (copied first where a view does not own its buffer).
   */
  compact(job: CompactionJob): Promise<CompactionJobResult> {
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
    const transfer = new Set(
      owned.inputs.flatMap(
        (i) =>
          [
            i.parquet.buffer,
            i.deletes.buffer,
            ...(i.hashes ? [i.hashes.his.buffer, i.hashes.los.buffer, i.hashes.has.buffer] : []),
          ] as ArrayBuffer[],
      ),
    );
    if (this.closed) return Promise.reject(new Error('parquet worker pool is closed'));
    if (this.size === 0)
      return this.runInline({ op: 'compact', payload: { compaction: owned }, transfer: [] }).then(
        (r) => r.result!,
      );
    // A worker of its own, so flushes and tail files never queue behind a compaction. It is
    // ended when it holds much after a job (its WebAssembly memory never shrinks; a compaction
    // streams row groups, so that is rare) or after a failure; otherwise it is reused
    // (starting one costs half a second).
    const run = this.compactions.then(async () => {
      this.compactor ??= this.spawnCompactor();
      const w = this.compactor;
      let failed = false;
      this.compacting = true;
      w.ref();
      try {
        return await new Promise<CompactionJobResult>((resolve, reject) => {
          const onMessage = (msg: {
            ok: boolean;
            result?: CompactionJobResult;
            error?: string;
            held?: number;
          }) => {
            if (msg.held !== undefined) return; // the worker's own listener takes it
            cleanup();
            if (msg.ok) resolve(msg.result!);
            else {
              // Its WebAssembly instance may be left unusable by what failed: a fresh one next.
              failed = true;
              reject(new Error(`compaction worker: ${msg.error}`));
            }
          };
          const onError = (e: Error) => {
            cleanup();
            this.forgetCompactor(w);
            reject(e);
          };
          const onExit = (code: number) => {
            cleanup();
            this.forgetCompactor(w);
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
        this.compacting = false;
        w.unref();
        if (failed && this.compactor === w) this.endCompactor(w);
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
    this.held.clear();
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

/** A compaction worker holding more than this after a job is ended (see compact). */
const HEAVY_WORKER_BYTES = 256 * 1024 * 1024;

let shared: ParquetWorkerPool | undefined;

/** The process-wide pool (sized to the machine). */
export function parquetPool(): ParquetWorkerPool {
  shared ??= new ParquetWorkerPool();
  return shared;
}
