/**
 * A small pool of worker threads running parquet-wasm. Encoding and decoding are synchronous
 * and CPU-bound, so they never run on a table's event loop; callers await the result.
 * A pool of size 0 runs them in the calling thread (for a Lambda serving one request at a time).
 *
 * Besides encode and decode the workers run jobs that higher layers define (the engine's column
 * encoder and compaction, lib/engine/worker-jobs.ts): a job module registered here by name
 * ({@link registerWorkerJob}) is loaded by each worker, and run with {@link runJob} (or
 * {@link runLong} on a worker of its own). The pool knows their names, not what they do.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type * as Codec from './parquet-codec.mjs';
import type { EncodeOptions } from './parquet-codec.mjs';

/** A worker's answer: what the job returned (its own fields). */
export type JobReply = Record<string, unknown>;

interface Pending {
  resolve: (reply: JobReply) => void;
  reject: (e: Error) => void;
}

type Job = {
  op: string;
  payload: Record<string, unknown>;
  transfer: ArrayBuffer[];
};

/** Job modules workers load (as the sources run: TypeScript through tsx), by job name. */
const jobModules = new Map<string, { href: () => string; eager: boolean }>();

/**
 * Makes a job available in the workers: `href` is the URL of a module exporting
 * `workerJob = { run(payload), transfer(result) }`, asked for only when a worker starts without
 * a bundle (a bundled worker has its jobs compiled in); `eager` loads it as the worker starts.
 */
export function registerWorkerJob(name: string, href: () => string, eager = false): void {
  jobModules.set(name, { href, eager });
}

/**
 * The worker's script: `MOONLINK_PARQUET_WORKER` where a bundle says where its compiled worker
 * is (the writer's bundle sets it, infra/build-writer.mjs), else the worker beside this module,
 * told which job modules to load.
 */
function newWorker(eager?: readonly string[]): Worker {
  const bundled = process.env.MOONLINK_PARQUET_WORKER;
  if (bundled) return new Worker(bundled);
  const modules = Object.fromEntries(
    [...jobModules].map(([name, m]) => [
      name,
      { href: m.href(), eager: eager ? eager.includes(name) : m.eager },
    ]),
  );
  return new Worker(new URL('./parquet-worker.mjs', import.meta.url), {
    workerData: { jobModules: modules },
  });
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
  /** Workers still loading their code (asked as they start, see {@link starting}). */
  private readonly loading = new Set<Worker>();
  private loaded: (() => void)[] = [];

  /**
   * `eager` names the registered jobs its workers load as they start (by default those
   * registered eager): a pool that runs one kind of job need not load the others' code.
   */
  constructor(
    readonly size = Math.max(1, Math.min(4, os.availableParallelism() - 1 || 1)),
    private readonly options: { eager?: readonly string[] } = {},
  ) {}

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
    const w = newWorker(this.options.eager);
    w.unref();
    w.on(
      'message',
      (msg: { id: number; ok: boolean; error?: string; held?: number; ready?: true; reply?: JobReply }) => {
        if (msg.held !== undefined) {
          // Sent after each reply: what the worker holds now.
          this.held.set(w, msg.held);
          return;
        }
        if (msg.ready) {
          this.doneLoading(w);
          return;
        }
        const cur = this.inFlight.get(w);
        this.inFlight.delete(w);
        if (cur) {
          if (msg.ok) cur.pending.resolve(msg.reply ?? {});
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
      this.doneLoading(w);
      this.pump();
    });
    w.on('exit', () => this.doneLoading(w));
    this.workers.push(w);
    // Asked first, so answered once the job modules it loads as it starts are in: until then the
    // first jobs would wait for its code (half a second to seconds on a busy machine).
    this.loading.add(w);
    w.postMessage({ op: 'ready' });
    return w;
  }

  private doneLoading(w: Worker): void {
    if (!this.loading.delete(w) || this.loading.size > 0) return;
    for (const resolve of this.loaded.splice(0)) resolve();
  }

  /**
   * Some worker is still loading its code: jobs sent now would wait for it. A writer is not
   * ready (`GET /health`) until its warm workers are in.
   */
  starting(): boolean {
    return this.loading.size > 0;
  }

  /**
   * Resolves once no worker is loading its code (at once when none is), or after `maxMs`
   * whatever they do (`starting()` still tells).
   */
  started(maxMs = 30_000): Promise<void> {
    if (this.loading.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, maxMs);
      timer.unref();
      this.loaded.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private spawnCompactor(): Worker {
    const w = newWorker();
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

  private run(job: Job): Promise<JobReply> {
    if (this.closed) return Promise.reject(new Error('parquet worker pool is closed'));
    if (this.size === 0) return this.runInline(job);
    return new Promise((resolve, reject) => {
      this.queue.push({ job, pending: { resolve, reject } });
      this.pump();
    });
  }

  private codec: Promise<typeof Codec> | undefined;

  /** Size 0: in the calling thread; parquet-wasm loads on first use (a short cold start). */
  private async runInline(job: Job): Promise<JobReply> {
    this.codec ??= import('./parquet-codec.mjs');
    const { encodeParquet, decodeParquet } = await this.codec;
    const p = job.payload as { ipc?: Uint8Array; parquet?: Uint8Array; columns?: string[] };
    if (job.op !== 'encode' && job.op !== 'decode') throw new Error(`no inline job ${job.op}`);
    try {
      return {
        bytes:
          job.op === 'encode' ? encodeParquet(p.ipc!, job.payload) : decodeParquet(p.parquet!, p.columns),
      };
    } catch (e) {
      throw new Error(`parquet: ${(e as Error).message}`);
    }
  }

  /** No threads: jobs are the caller's to run in its own thread (see worker-jobs.ts). */
  get inline(): boolean {
    return this.size === 0;
  }

  /** Fails once the pool is closed (a job run inline checks too). */
  checkOpen(): void {
    if (this.closed) throw new Error('parquet worker pool is closed');
  }

  /** Arrow IPC stream bytes → Parquet bytes. The input buffer is transferred (unusable after). */
  encode(ipc: Uint8Array, options: EncodeOptions = {}): Promise<Uint8Array> {
    const own = ownBuffer(ipc);
    return this.run({
      op: 'encode',
      payload: { ipc: own, ...options },
      transfer: [own.buffer as ArrayBuffer],
    }).then((r) => r.bytes as Uint8Array);
  }

  /** A registered job on one of the pool's workers; `transfer` is handed over (unusable after). */
  runJob(op: string, payload: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<JobReply> {
    if (this.size === 0) return Promise.reject(new Error(`job ${op}: a pool of size 0 runs no jobs`));
    return this.run({ op, payload, transfer });
  }

  /**
   * A long registered job (a compaction) on a worker of its own, one at a time, so flushes and
   * tail files never queue behind it.
   */
  runLong(op: string, payload: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<JobReply> {
    if (this.closed) return Promise.reject(new Error('parquet worker pool is closed'));
    if (this.size === 0) return Promise.reject(new Error(`job ${op}: a pool of size 0 runs no jobs`));
    // The worker is ended when it holds much after a job (its WebAssembly memory never shrinks;
    // a compaction streams row groups, so that is rare) or after a failure; otherwise it is
    // reused (starting one costs half a second).
    const run = this.compactions.then(async () => {
      this.compactor ??= this.spawnCompactor();
      const w = this.compactor;
      let failed = false;
      this.compacting = true;
      w.ref();
      try {
        return await new Promise<JobReply>((resolve, reject) => {
          const onMessage = (msg: { ok: boolean; reply?: JobReply; error?: string; held?: number }) => {
            if (msg.held !== undefined) return; // the worker's own listener takes it
            cleanup();
            if (msg.ok) resolve(msg.reply ?? {});
            else {
              // Its WebAssembly instance may be left unusable by what failed: a fresh one next.
              failed = true;
              reject(new Error(`${op} worker: ${msg.error}`));
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
            reject(new Error(`${op} worker exited (${code})`));
          };
          const cleanup = () => {
            w.off('message', onMessage);
            w.off('error', onError);
            w.off('exit', onExit);
          };
          w.on('message', onMessage);
          w.on('error', onError);
          w.on('exit', onExit);
          w.postMessage({ id: 0, op, long: true, ...payload }, [...new Set(transfer)]);
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
    }).then((r) => r.bytes as Uint8Array);
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
    this.loading.clear();
    for (const resolve of this.loaded.splice(0)) resolve();
    this.workers.length = 0;
    this.idle.length = 0;
  }
}

/** A copy when the view does not own its whole buffer, so it can be transferred safely. */
export function ownBuffer<T extends Uint8Array | Uint32Array>(bytes: T): T {
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
