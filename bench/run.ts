/**
 * `npm run bench [-- --quick]`: each scenario prints one JSON line, then a table, and the run is
 * saved to bench/results/latest.json with a chart (bench/results/chart.svg).
 *
 * The service runs as a child process (`npm start`'s entry point) on loopback, written to over
 * its public HTTP API in batches of 1,000 rows, so a figure includes JSON parsing, validation,
 * the durable log's fsyncs, the index, flushing and the final Iceberg commit. Baselines are
 * measured in the same run on the same rows (see workload.ts).
 */
import { promises as fs, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { encodeTransaction, MAX_RECORD_BYTES } from '../lib/log/kinesis-records.ts';
import { lsnAfter, ZERO_LSN } from '../lib/lsn.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { type ServiceProcess, startServiceProcess } from '../test/support/service-process.ts';
import { openTestTable } from '../test/support/table-harness.ts';
import { renderChart } from './chart.ts';
import {
  arrowRows,
  columns,
  duckdbAppendRowsPerSec,
  duckdbParquetAppendRowsPerSec,
  duckdbUpsertOpsPerSec,
  floorRowsPerSec,
  percentile,
  rowJson,
  schema,
  timed,
  tmpDir,
  upsertOps,
} from './workload.ts';

const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const SIZES = quick
  ? {
      append: Number(process.env.BENCH_APPEND_ROWS ?? 200_000),
      upserts: 200_000,
      keys: 50_000,
      freshSecs: 6,
      visibleWrites: 100,
      files: 200,
      memRows: 300_000,
      localAppend: 100_000,
    }
  : {
      append: 5_000_000,
      upserts: 2_000_000,
      keys: 500_000,
      freshSecs: 30,
      visibleWrites: 400,
      files: 1000,
      memRows: 2_000_000,
      localAppend: 1_000_000,
    };
const BATCH = 1000;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);

type Result = Record<string, number | string | boolean>;
const results: Result[] = [];

function report(r: Result): void {
  results.push(r);
  console.log(JSON.stringify(r));
}

/** The service of the scenario running now (its output is printed if the scenario fails). */
let running: ServiceProcess | undefined;

async function service(
  env: Record<string, string> = {},
  entry: 'start' | 'local' = 'start',
): Promise<{ svc: ServiceProcess; dir: string }> {
  const dir = await tmpDir('mlbench-');
  const svc = await startServiceProcess(
    { MOONLINK_DATA_DIR: dir, LOG_LEVEL: 'ERROR', MOONLINK_MAX_BODY_BYTES: String(64 << 20), ...env },
    60_000,
    { entry },
  );
  running = svc;
  await ready(svc.url);
  await quiet(svc.child.pid);
  return { svc, dir };
}

/** Until `GET /health` answers 200 (its worker threads have loaded their code). */
async function ready(url: string, maxMs = 60_000): Promise<void> {
  const until = Date.now() + maxMs;
  for (;;) {
    const r = await fetch(`${url}/health`);
    const body = await r.text();
    if (r.ok) return;
    if (Date.now() > until) throw new Error(`service not ready after ${maxMs} ms: ${body}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Waits until a freshly started service is quiet: besides its workers' code (which `ready`
 * waits for), V8 compiles and collects for a while after start, and a scenario timed meanwhile
 * would share the cores with that instead of measuring ingest.
 */
async function quiet(pid: number | undefined, maxMs = 20_000): Promise<void> {
  const until = Date.now() + maxMs;
  let calm = 0;
  let last = processCpuSeconds(pid);
  while (calm < 2 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    const now = processCpuSeconds(pid);
    calm = now - last < 0.03 ? calm + 1 : 0;
    last = now;
  }
}

async function stop(s: { svc: ServiceProcess; dir: string }): Promise<void> {
  // SIGTERM when profiling, so the CPU profile is written.
  await s.svc.kill(process.env.SERVICE_NODE_ARGS?.includes('--cpu-prof') ? 'SIGTERM' : 'SIGKILL');
  await fs.rm(s.dir, { recursive: true, force: true });
}

/**
 * Keep-alive connections through node:http: the client shares the machine's two cores with the
 * service, and this costs it about half the CPU of `fetch` per request.
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** A POST over the keep-alive agent: status, body text and Retry-After. */
function request(
  url: string,
  bytes: Uint8Array,
  contentType = 'application/json',
): Promise<{ status: number; text: string; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': contentType, 'content-length': bytes.byteLength },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString(),
            retryAfter: res.headers['retry-after'] as string | undefined,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(bytes);
  });
}

async function post(
  url: string,
  body: string | Uint8Array,
  contentType?: string,
): Promise<{ lsn: number | string }> {
  const { status, text } = await request(
    url,
    typeof body === 'string' ? Buffer.from(body) : body,
    contentType,
  );
  if (status !== 200) throw new Error(`${url}: ${status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

async function createBenchTable(
  url: string,
  name: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const r = await fetch(`${url}/tables`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, columns, primaryKey: ['id'], ...extra }),
  });
  if (r.status !== 201) throw new Error(`create: ${r.status} ${await r.text()}`);
}

/**
 * Request bodies, built before the clock starts: producing JSON is the client's work (on
 * another machine in production), and here it would take CPU from the service.
 */
function bodies(count: number, build: (b: number) => string): Uint8Array[] {
  return Array.from({ length: count }, (_, b) => Buffer.from(build(b)));
}

/** The append's rows 0…n-1 as insert bodies of BATCH rows. */
function insertBodies(n: number): Uint8Array[] {
  return bodies(Math.ceil(n / BATCH), (b) => {
    let body = '{"ops":[';
    for (let i = b * BATCH; i < Math.min(n, (b + 1) * BATCH); i++)
      body += `${i > b * BATCH ? ',' : ''}{"op":"insert","row":${rowJson(i)}}`;
    return `${body}]}`;
  });
}

/** Sends the bodies with a few requests in flight. */
async function drive(url: string, list: Uint8Array[], contentType?: string): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < list.length) {
      const b = next++;
      await post(url, list[b], contentType);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

async function appendScenario(): Promise<void> {
  const n = SIZES.append;
  const list = insertBodies(n);
  // The floor is measured before and after ours and averaged: this machine's speed drifts by
  // tens of percent within minutes, and a single measurement moved the ratio as much.
  const floorBefore = await floorRowsPerSec(n);
  // After the bodies: a connection left idle past the server's keep-alive timeout would be cut.
  const s = await service();
  await createBenchTable(s.svc.url, 'append');
  await createBenchTable(s.svc.url, 'probe');
  // Responsiveness: while the load, the flush and the compaction after it run, a single-row
  // write to another table and GET /health every 20 ms.
  const probe = startProbe(s.svc.url);
  const serviceCpu0 = processCpuSeconds(s.svc.child.pid);
  const clientCpu0 = process.cpuUsage();
  // The rate's two parts: the writes, and the flush of what is still in memory after them.
  let flushSecs = 0;
  const secs = await timed(async () => {
    await drive(`${s.svc.url}/tables/append/rows`, list);
    flushSecs = await timed(() => post(`${s.svc.url}/tables/append/flush`, '').then(() => undefined));
  });
  // Where the two cores went: the service (all its threads) and this client sending the requests.
  const serviceCpu = processCpuSeconds(s.svc.child.pid) - serviceCpu0;
  const clientCpuUse = process.cpuUsage(clientCpu0);
  const clientCpu = (clientCpuUse.user + clientCpuUse.system) / 1e6;
  // Merging the flushed files waits while writes keep the loop busy: how long after the burst
  // until it is done (not in the rate above, which ends when everything is committed).
  const settle = await compactionSettled(s.svc.url, 'append');
  const probed = await probe.stop();
  const loopDelay = await eventLoopDelay(s.svc.url, 'append');
  await stop(s);
  const ours = n / secs;
  const floorAfter = await floorRowsPerSec(n);
  const floor = (floorBefore + floorAfter) / 2;
  const dir = await tmpDir('mlduck-');
  const duck = await duckdbAppendRowsPerSec(n, dir);
  await fs.rm(dir, { recursive: true, force: true });
  report({
    scenario: 'append',
    rows: n,
    rowsPerSec: Math.round(ours),
    floorRowsPerSec: Math.round(floor),
    floorRuns: `${Math.round(floorBefore)}/${Math.round(floorAfter)}`,
    duckdbRowsPerSec: Math.round(duck),
    vsFloor: +(ours / floor).toFixed(3),
    vsDuckdb: +(ours / duck).toFixed(3),
    serviceCores: +(serviceCpu / secs).toFixed(2),
    clientCores: +(clientCpu / secs).toFixed(2),
    // Service CPU per row in µs, all threads: steadier across runs than the rate (which moves
    // with how the two cores are shared).
    serviceCpuUsPerRow: +((serviceCpu / n) * 1e6).toFixed(2),
    finalFlushSec: +flushSecs.toFixed(2),
    filesAtCommit: settle.filesBefore,
    filesCompacted: settle.filesAfter,
    compactedAfterSec: settle.seconds,
    compactionsFailed: settle.failed,
  });
  report({
    scenario: 'responsiveness',
    during: `append ${n} rows, flush, compaction`,
    writeP50Ms: probed.write.p50,
    writeP99Ms: probed.write.p99,
    writeMaxMs: probed.write.max,
    healthP50Ms: probed.health.p50,
    healthP99Ms: probed.health.p99,
    healthMaxMs: probed.health.max,
    probeFailures: probed.failures,
    loopDelayP99Ms: loopDelay.p99Ms,
    loopDelayMaxMs: loopDelay.maxMs,
    targetsMet:
      probed.write.p99 <= 50 &&
      probed.health.p99 <= 50 &&
      probed.write.max <= 250 &&
      probed.health.max <= 250,
  });
}

/** One request on its own connection (a stalled server shows as latency, not a reused socket's reset). */
function timedRequest(method: string, url: string, body?: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method, agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(performance.now() - t0)
            : reject(new Error(`${url}: ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Every 20 ms, alternately a single-row write to `probe` and GET /health; latencies kept. */
function startProbe(url: string): { stop(): Promise<{ write: Stats; health: Stats; failures: number }> } {
  const write: number[] = [];
  const health: number[] = [];
  let failures = 0;
  let stopped = false;
  let i = 0;
  const loop = (async () => {
    while (!stopped) {
      const next = performance.now() + 20;
      const w = i++ % 2 === 0;
      try {
        if (w)
          write.push(
            await timedRequest(
              'POST',
              `${url}/tables/probe/rows`,
              `{"ops":[{"op":"upsert","row":${rowJson(i)}}]}`,
            ),
          );
        else health.push(await timedRequest('GET', `${url}/health`));
      } catch {
        failures++;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return { write: stats(write), health: stats(health), failures };
    },
  };
}

interface Stats {
  p50: number;
  p99: number;
  max: number;
}

function stats(xs: number[]): Stats {
  const sorted = [...xs].sort((a, b) => a - b);
  const r = (v: number) => +v.toFixed(1);
  return sorted.length === 0
    ? { p50: 0, p99: 0, max: 0 }
    : { p50: r(percentile(sorted, 50)), p99: r(percentile(sorted, 99)), max: r(sorted[sorted.length - 1]) };
}

/** The service's main-thread event-loop delay since it started (from the writer's status). */
async function eventLoopDelay(url: string, table: string): Promise<{ p99Ms: number; maxMs: number }> {
  const d = (await (await fetch(`${url}/tables/${table}`)).json()) as {
    writer?: { eventLoopDelay?: { p99Ms: number; maxMs: number } };
  };
  return d.writer?.eventLoopDelay ?? { p99Ms: Number.NaN, maxMs: Number.NaN };
}

/** Polls the table until no two files are below half the target size (or 120 s pass). */
async function compactionSettled(
  url: string,
  table: string,
): Promise<{ filesBefore: number; filesAfter: number; seconds: number; failed: number }> {
  const t0 = Date.now();
  const small = (files: { sizeBytes: number }[]) => files.filter((f) => f.sizeBytes < 64 << 20).length;
  let filesBefore = -1;
  for (;;) {
    const d = (await (await fetch(`${url}/tables/${table}`)).json()) as {
      dataFiles: { sizeBytes: number }[];
      writer?: { compactions: number; compactionsFailed: number };
    };
    if (filesBefore < 0) filesBefore = d.dataFiles.length;
    if (small(d.dataFiles) <= 1 || Date.now() - t0 > 120_000)
      return {
        filesBefore,
        filesAfter: d.dataFiles.length,
        seconds: +((Date.now() - t0) / 1000).toFixed(1),
        failed: d.writer?.compactionsFailed ?? 0,
      };
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** CPU seconds (user + system, every thread) a process has used so far, from /proc (Linux). */
function processCpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

async function upsertScenario(): Promise<void> {
  const ops = upsertOps(SIZES.upserts, SIZES.keys);
  const list = bodies(Math.ceil(ops.length / BATCH), (b) => {
    let body = '{"ops":[';
    for (let i = b * BATCH; i < Math.min(ops.length, (b + 1) * BATCH); i++) {
      const o = ops[i];
      const row = o.op === 'delete' ? `{"id":${o.id}}` : rowJson(o.id, o.variant);
      body += `${i > b * BATCH ? ',' : ''}{"op":"${o.op}","row":${row}}`;
    }
    return `${body}]}`;
  });
  const s = await service();
  await createBenchTable(s.svc.url, 'upserts');
  const secs = await timed(async () => {
    // Strictly in order, one batch at a time, like the DuckDB peer's transactions.
    for (const body of list) await post(`${s.svc.url}/tables/upserts/rows`, body);
    await post(`${s.svc.url}/tables/upserts/flush`, '');
  });
  await stop(s);
  const ours = ops.length / secs;
  const floor = await floorRowsPerSec(ops.length);
  const dir = await tmpDir('mlduck-');
  const duck = await duckdbUpsertOpsPerSec(ops, BATCH, dir);
  await fs.rm(dir, { recursive: true, force: true });
  report({
    scenario: 'upsert',
    operations: ops.length,
    keys: SIZES.keys,
    rowsPerSec: Math.round(ours),
    floorRowsPerSec: Math.round(floor),
    duckdbRowsPerSec: Math.round(duck),
    vsFloor: +(ours / floor).toFixed(3),
    vsDuckdb: +(ours / duck).toFixed(3),
  });
}

async function freshnessScenario(): Promise<void> {
  const s = await service();
  await createBenchTable(s.svc.url, 'fresh');
  const url = s.svc.url;
  // (a) Periodic snapshots (default 1 s): ack → visible in the table's published snapshot.
  const delays: number[] = [];
  let id = 0;
  let stopAt = Date.now() + SIZES.freshSecs * 1000;
  const pending: { lsn: number; ackedAt: number }[] = [];
  const writer = (async () => {
    while (Date.now() < stopAt) {
      let body = '{"ops":[';
      for (let i = 0; i < 10; i++) body += `${i > 0 ? ',' : ''}{"op":"insert","row":${rowJson(id++)}}`;
      const r = await post(`${url}/tables/fresh/rows`, `${body}]}`);
      pending.push({ lsn: Number(r.lsn), ackedAt: performance.now() });
      await new Promise((res) => setTimeout(res, 50));
    }
  })();
  const poller = (async () => {
    while (Date.now() < stopAt + 2000 || pending.length > 0) {
      const d = (await (await fetch(`${url}/tables/fresh`)).json()) as { lsn: number };
      const now = performance.now();
      while (pending.length > 0 && pending[0].lsn <= d.lsn) delays.push(now - pending.shift()!.ackedAt);
      await new Promise((res) => setTimeout(res, 5));
      if (Date.now() > stopAt + 10_000) break;
    }
  })();
  await writer;
  await poller;
  delays.sort((a, b) => a - b);
  // (b) ?wait=visible: the write returns once an on-demand snapshot includes it.
  const visible: number[] = [];
  for (let k = 0; k < SIZES.visibleWrites; k++) {
    let body = '{"ops":[';
    for (let i = 0; i < 10; i++) body += `${i > 0 ? ',' : ''}{"op":"insert","row":${rowJson(id++)}}`;
    const t = performance.now();
    await post(`${url}/tables/fresh/rows?wait=visible`, `${body}]}`);
    visible.push(performance.now() - t);
  }
  visible.sort((a, b) => a - b);
  stopAt = 0;
  await stop(s);
  report({
    scenario: 'freshness',
    writes: delays.length,
    p50Ms: +percentile(delays, 50).toFixed(1),
    p99Ms: +percentile(delays, 99).toFixed(1),
    waitVisibleWrites: visible.length,
    waitVisibleP50Ms: +percentile(visible, 50).toFixed(1),
    waitVisibleP99Ms: +percentile(visible, 99).toFixed(1),
  });
}

async function readPlanningScenario(): Promise<void> {
  // Tiny MemSlices and no compaction: every 100 rows become a data file.
  const s = await service({ MOONLINK_MEMSLICE_MAX_ROWS: '100', MOONLINK_COMPACTION: 'false' });
  await createBenchTable(s.svc.url, 'files');
  const url = s.svc.url;
  let lsn: number | string = 0;
  for (let b = 0; b < SIZES.files / 10; b++) {
    let body = '{"ops":[';
    for (let i = 0; i < 1000; i++)
      body += `${i > 0 ? ',' : ''}{"op":"insert","row":${rowJson(b * 1000 + i)}}`;
    lsn = (await post(`${url}/tables/files/rows`, `${body}]}`)).lsn;
  }
  await post(`${url}/tables/files/flush`, '');
  const described = (await (await fetch(`${url}/tables/files`)).json()) as { files: number };
  const lat: number[] = [];
  let fileCount = 0;
  for (let k = 0; k < 300; k++) {
    const t = performance.now();
    const r = await fetch(`${url}/tables/files/snapshot?minLsn=${lsn}`);
    const snap = (await r.json()) as { dataFiles: unknown[]; leaseId: string };
    lat.push(performance.now() - t);
    fileCount = snap.dataFiles.length;
    await fetch(`${url}/leases/${snap.leaseId}`, { method: 'DELETE' });
  }
  await stop(s);
  const warm = lat.slice(20).sort((a, b) => a - b);
  report({
    scenario: 'read-planning',
    dataFiles: described.files,
    filesInSnapshot: fileCount,
    reads: warm.length,
    p50Ms: +percentile(warm, 50).toFixed(2),
    p99Ms: +percentile(warm, 99).toFixed(2),
  });
}

async function memoryScenario(): Promise<void> {
  const n = SIZES.memRows;
  const pool = new ParquetWorkerPool(1);
  const { handler } = await openTestTable({
    name: 'mem',
    schema,
    pool,
    options: { memSliceMaxRows: 1e9, memSliceMaxBytes: 1e12 },
  });
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const BASE_US = 1_700_000_000_000_000n;
  let lsn = ZERO_LSN;
  for (let start = 0; start < n; start += BATCH) {
    const ops = [];
    for (let i = start; i < Math.min(n, start + BATCH); i++) {
      ops.push({
        op: 'insert' as const,
        values: [
          BigInt(i),
          `customer-${String(i).padStart(11, '0')}`,
          ((i * 7919) % 100000) / 100,
          BASE_US + BigInt(i) * 1000n,
        ],
        key: String(i),
      });
    }
    lsn = lsnAfter(lsn);
    handler.apply(lsn, ops);
    if (start % 100_000 === 0) await handler.snapshotAtLeast(lsn);
  }
  await handler.snapshotAtLeast(lsn);
  peak = Math.max(peak, process.memoryUsage().rss);
  clearInterval(sampler);
  const status = handler.status();
  await handler.close();
  await pool.close();
  report({
    scenario: 'memory',
    bufferedRows: status.memRows,
    peakRssMbPerMillionRows: +(((peak - before) / 2 ** 20) * (1e6 / n)).toFixed(1),
    estimatedMemSliceMbPerMillionRows: +((status.memBytes / 2 ** 20) * (1e6 / n)).toFixed(1),
  });
}

/** Resident memory of a process now (all its threads), from /proc (Linux). */
function rssBytes(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * Overload: 8 clients write 1,000-row inserts as fast as they can for 60 s into a writer with a
 * 1 GiB memory budget. Refused writes (503 backpressure, each with Retry-After) are retried after
 * it; /health is timed every 100 ms; the service's RSS is sampled; at the end every
 * acknowledged row must be there once.
 */
async function overloadScenario(): Promise<void> {
  const budget = 1 << 30;
  const seconds = quick ? 10 : 60;
  const s = await service({ MOONLINK_MEMORY_BUDGET_BYTES: String(budget) });
  await createBenchTable(s.svc.url, 'overload');
  const url = `${s.svc.url}/tables/overload/rows`;
  let peakRss = 0;
  let samples = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssBytes(s.svc.child.pid) || 0);
    // BENCH_VERBOSE=1: what the writer counts against the budget beside the process's figures.
    if (process.env.BENCH_VERBOSE && samples++ % 25 === 0)
      void fetch(`${s.svc.url}/tables/overload`)
        .then((r) => r.json() as Promise<{ writer?: unknown }>)
        .then((d) => console.error(JSON.stringify(d.writer)))
        .catch(() => undefined);
  }, 200);
  const health: number[] = [];
  let stopped = false;
  const prober = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      try {
        await timedRequest('GET', `${s.svc.url}/health`);
        health.push(performance.now() - t0);
      } catch {
        health.push(performance.now() - t0);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  let refused = 0;
  let refusedWithoutRetryAfter = 0;
  let acked = 0;
  let nextBatch = 0;
  const until = Date.now() + seconds * 1000;
  const t0 = performance.now();
  const client = async (): Promise<void> => {
    while (Date.now() < until) {
      const b = nextBatch++;
      let body = '{"ops":[';
      for (let i = 0; i < BATCH; i++)
        body += `${i ? ',' : ''}{"op":"insert","row":${rowJson(b * BATCH + i)}}`;
      const bytes = Buffer.from(`${body}]}`);
      for (;;) {
        const r = await rawPost(url, bytes);
        if (r.status === 200) {
          acked += BATCH;
          break;
        }
        if (r.status === 503 && r.code === 'backpressure') {
          refused++;
          const after = Number(r.retryAfter);
          if (!(after > 0)) refusedWithoutRetryAfter++;
          await new Promise((res) => setTimeout(res, (after > 0 ? after : 1) * 1000));
          continue;
        }
        throw new Error(`overload write: ${r.status} ${r.code}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, client));
  const secs = (performance.now() - t0) / 1000;
  stopped = true;
  await prober;
  const flushed = await post(`${s.svc.url}/tables/overload/flush`, '');
  clearInterval(sampler);
  const rowsAfter = await rowsAt(s.svc.url, 'overload', flushed.lsn);
  await stop(s);
  const h = stats(health);
  report({
    scenario: 'overload',
    clients: 8,
    seconds,
    rowsPerSec: Math.round(acked / secs),
    refusedWrites: refused,
    refusedWithoutRetryAfter,
    budgetMb: budget / 2 ** 20,
    peakRssMb: Math.round(peakRss / 2 ** 20),
    rssVsBudget: +(peakRss / budget).toFixed(2),
    healthP99Ms: h.p99,
    healthMaxMs: h.max,
    ackedRows: acked,
    rowsAfter,
    nothingLost: rowsAfter === acked,
    targetsMet:
      peakRss <= 1.25 * budget && h.max <= 250 && rowsAfter === acked && refusedWithoutRetryAfter === 0,
  });
}

/** Live rows of the table in a snapshot at or after `lsn` (its files' rows less their deletes). */
async function rowsAt(url: string, table: string, lsn: number | string): Promise<number> {
  const snap = (await (await fetch(`${url}/tables/${table}/snapshot?minLsn=${lsn}`)).json()) as {
    dataFiles: { rowCount: number; deletes?: { cardinality: number } }[];
    leaseId: string;
  };
  await fetch(`${url}/leases/${encodeURIComponent(snap.leaseId)}`, { method: 'DELETE' });
  return snap.dataFiles.reduce((n, f) => n + f.rowCount - (f.deletes?.cardinality ?? 0), 0);
}

/** A POST whose refusal is an answer, not an exception: status, error code, Retry-After. */
async function rawPost(
  url: string,
  body: Uint8Array,
): Promise<{ status: number; code?: string; retryAfter?: string }> {
  const { status, text, retryAfter } = await request(url, body);
  if (status === 200) return { status };
  let code: string | undefined;
  try {
    code = JSON.parse(text).error?.code;
  } catch {
    code = undefined;
  }
  return { status, code, retryAfter };
}

/**
 * Recovery: 1M rows acknowledged only into the log (no flush, no commit), SIGKILL, restart:
 * how long until the service answers, and until it is ready (the log replayed and a snapshot
 * covering it published); replay speed in rows/s.
 */
async function recoveryScenario(): Promise<void> {
  const n = quick ? 200_000 : 1_000_000;
  const env = {
    MOONLINK_MEMSLICE_MAX_ROWS: String(4 * n),
    MOONLINK_MEMSLICE_MAX_BYTES: String(4 * 2 ** 30),
    MOONLINK_COMMIT_INTERVAL_MS: '3600000',
  };
  const s = await service(env);
  await createBenchTable(s.svc.url, 'recover');
  const list = insertBodies(n);
  // The last batch after all others, so its LSN is the log's end.
  await drive(`${s.svc.url}/tables/recover/rows`, list.slice(0, -1));
  const lastLsn = (await post(`${s.svc.url}/tables/recover/rows`, list[list.length - 1])).lsn;
  await s.svc.kill('SIGKILL');
  const t0 = performance.now();
  const svc = await startServiceProcess(
    { MOONLINK_DATA_DIR: s.dir, LOG_LEVEL: 'ERROR', MOONLINK_MAX_BODY_BYTES: String(64 << 20), ...env },
    120_000,
  );
  running = svc;
  const liveSecs = (performance.now() - t0) / 1000;
  for (;;) {
    const r = await fetch(`${svc.url}/health`);
    if (r.status === 200) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  const readySecs = (performance.now() - t0) / 1000;
  const rowsAfter = await rowsAt(svc.url, 'recover', lastLsn);
  await stop({ svc, dir: s.dir });
  report({
    scenario: 'recovery',
    rowsInLog: n,
    answersAfterSec: +liveSecs.toFixed(2),
    readyAfterSec: +readySecs.toFixed(2),
    replayRowsPerSec: Math.round(n / readySecs),
    rowsAfter,
    nothingLost: rowsAfter === n,
  });
}

/** Bytes a process has caused to be written to storage so far (/proc/pid/io, Linux). */
function writtenBytes(pid: number | undefined): number {
  try {
    const m = /write_bytes:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

async function folderBytes(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    files++;
    bytes += (await fs.stat(path.join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
  }
  return { files, bytes };
}

/**
 * Soak: steady upserts (~25,000 ops/s in 1,000-op requests, 500,000 keys, 10 % deletes) for 10
 * minutes. Sampled every 10 s: RSS and index entries against live rows. At the end: bytes the
 * service wrote to storage per byte of request bodies (write amplification), and the objects
 * kept against the table's live data files.
 */
async function soakScenario(): Promise<void> {
  const seconds = quick ? 40 : 600;
  const keys = quick ? 100_000 : 500_000;
  const opsPerSec = 25_000;
  const s = await service();
  await createBenchTable(s.svc.url, 'soak');
  const url = `${s.svc.url}/tables/soak/rows`;
  const written0 = writtenBytes(s.svc.child.pid);
  let ingested = 0;
  let ops = 0;
  let seed = 12345;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  const samples: { t: number; rssMb: number; indexEntries: number; liveRows: number }[] = [];
  const sample = async (t: number) => {
    const d = (await (await fetch(`${s.svc.url}/tables/soak`)).json()) as {
      rows: number;
      writer?: { indexEntries: number };
    };
    samples.push({
      t,
      rssMb: Math.round(rssBytes(s.svc.child.pid) / 2 ** 20),
      indexEntries: d.writer?.indexEntries ?? 0,
      liveRows: d.rows,
    });
  };
  const t0 = performance.now();
  let nextSample = 10;
  for (let batch = 0; ; batch++) {
    const elapsed = (performance.now() - t0) / 1000;
    if (elapsed >= seconds) break;
    if (elapsed >= nextSample) {
      await sample(Math.round(elapsed));
      nextSample += 10;
    }
    let body = '{"ops":[';
    for (let i = 0; i < BATCH; i++) {
      const id = Math.floor(rand() * keys);
      body += `${i ? ',' : ''}${rand() < 0.1 ? `{"op":"delete","row":{"id":${id}}}` : `{"op":"upsert","row":${rowJson(id, batch)}}`}`;
    }
    const bytes = Buffer.from(`${body}]}`);
    await post(url, bytes);
    ingested += bytes.length;
    ops += BATCH;
    // Paced: the next request when the rate says so.
    const due = t0 + (ops / opsPerSec) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const secs = (performance.now() - t0) / 1000;
  await post(`${s.svc.url}/tables/soak/flush`, '');
  await sample(Math.round(secs));
  const written = writtenBytes(s.svc.child.pid) - written0;
  const d = (await (await fetch(`${s.svc.url}/tables/soak`)).json()) as {
    rows: number;
    dataFiles: { sizeBytes: number }[];
  };
  const kept = await folderBytes(path.join(s.dir, 'objects'));
  await stop(s);
  const liveBytes = d.dataFiles.reduce((n, f) => n + f.sizeBytes, 0);
  const warm = samples[Math.min(samples.length - 1, Math.floor(samples.length / 4))];
  const last = samples[samples.length - 1];
  const indexRatio = Math.max(...samples.map((x) => (x.liveRows > 0 ? x.indexEntries / x.liveRows : 0)));
  report({
    scenario: 'soak',
    seconds: Math.round(secs),
    opsPerSec: Math.round(ops / secs),
    keys,
    rssWarmMb: warm.rssMb,
    rssEndMb: last.rssMb,
    rssMaxMb: Math.max(...samples.map((x) => x.rssMb)),
    rssOverTime: samples.map((x) => `${x.t}s:${x.rssMb}`).join(' '),
    maxIndexEntriesPerLiveRow: +indexRatio.toFixed(2),
    liveRows: d.rows,
    writeAmplification: +(written / ingested).toFixed(2),
    objectsKept: kept.files,
    objectsKeptMb: +(kept.bytes / 2 ** 20).toFixed(1),
    liveDataMb: +(liveBytes / 2 ** 20).toFixed(1),
    targetsMet: last.rssMb <= 1.2 * warm.rssMb && indexRatio <= 1.2,
  });
}

/**
 * The same rows as `append`, sent as Arrow IPC stream bodies of 10,000 rows (issue: bulk ingest).
 * The peer is DuckDB loading the same rows from a Parquet file and writing Parquet.
 */
async function appendArrowScenario(): Promise<void> {
  const n = SIZES.append;
  const ARROW_BATCH = 10_000;
  const list = Array.from({ length: Math.ceil(n / ARROW_BATCH) }, (_, b) =>
    arrowRows(b * ARROW_BATCH, Math.min(ARROW_BATCH, n - b * ARROW_BATCH)),
  );
  const floorBefore = await floorRowsPerSec(n);
  const s = await service();
  await createBenchTable(s.svc.url, 'append');
  const serviceCpu0 = processCpuSeconds(s.svc.child.pid);
  const secs = await timed(async () => {
    await drive(`${s.svc.url}/tables/append/rows`, list, 'application/vnd.apache.arrow.stream');
    await post(`${s.svc.url}/tables/append/flush`, '');
  });
  const serviceCpu = processCpuSeconds(s.svc.child.pid) - serviceCpu0;
  await stop(s);
  const ours = n / secs;
  const floor = (floorBefore + (await floorRowsPerSec(n))) / 2;
  const dir = await tmpDir('mlduck-');
  const duck = await duckdbParquetAppendRowsPerSec(n, dir);
  await fs.rm(dir, { recursive: true, force: true });
  report({
    scenario: 'append-arrow',
    rows: n,
    bodyRows: ARROW_BATCH,
    rowsPerSec: Math.round(ours),
    floorRowsPerSec: Math.round(floor),
    duckdbRowsPerSec: Math.round(duck),
    vsFloor: +(ours / floor).toFixed(3),
    vsDuckdb: +(ours / duck).toFixed(3),
    serviceCores: +(serviceCpu / secs).toFixed(2),
  });
}

const PARTITION_BY = [
  { column: 'at', transform: 'day' },
  { column: 'id', transform: 'bucket[16]' },
];

/** Files per partition in the table's current snapshot: the most and the mean. */
async function filesPerPartition(
  url: string,
  table: string,
): Promise<{ partitions: number; max: number; mean: number }> {
  type Snap = { dataFiles: { kind: string; partition?: Record<string, unknown> }[]; leaseId: string };
  let snap: Snap;
  // A snapshot published before the flush's files may still list tail files: wait for one without.
  for (let tries = 0; ; tries++) {
    snap = (await (await fetch(`${url}/tables/${table}/snapshot`)).json()) as Snap;
    await fetch(`${url}/leases/${snap.leaseId}`, { method: 'DELETE' });
    if (snap.dataFiles.every((f) => f.kind === 'data') || tries >= 100) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const counts = new Map<string, number>();
  for (const f of snap.dataFiles) {
    const k = JSON.stringify(f.partition ?? null);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const n = [...counts.values()];
  return {
    partitions: n.length,
    max: Math.max(0, ...n),
    mean: n.length === 0 ? 0 : +(n.reduce((a, b) => a + b, 0) / n.length).toFixed(2),
  };
}

/**
 * The append's rows into a table partitioned by day(at) and bucket[16](id), against the same
 * rows into an unpartitioned table in the same service, twice each in the order plain,
 * partitioned, partitioned, plain (target: at least 0.7× its rate); then how many files each
 * partition of the first partitioned table keeps once compaction has merged them (small files
 * of a partition merge once four exist, or two once the oldest is 10 s old here).
 */
async function appendPartitionedScenario(): Promise<void> {
  const n = SIZES.append;
  const list = insertBodies(n);
  const s = await service({ MOONLINK_COMPACT_SMALL_FILE_AGE_MS: '10000' });
  for (const t of ['plain', 'plain2']) await createBenchTable(s.svc.url, t);
  for (const t of ['parted', 'parted2']) await createBenchTable(s.svc.url, t, { partitionBy: PARTITION_BY });
  const run = async (table: string): Promise<number> =>
    n /
    (await timed(async () => {
      await drive(`${s.svc.url}/tables/${table}/rows`, list);
      await post(`${s.svc.url}/tables/${table}/flush`, '');
    }));
  // Warm-up (the JIT, the worker threads) so neither measured run pays for it.
  await createBenchTable(s.svc.url, 'warm');
  await drive(`${s.svc.url}/tables/warm/rows`, list.slice(0, Math.ceil(list.length / 10)));
  await post(`${s.svc.url}/tables/warm/flush`, '');
  // Plain, partitioned, partitioned, plain (each into its own table): the machine's speed
  // drifts by tens of percent within minutes, and this order gives both kinds the same mean
  // position in time. Each table's compaction is let finish first, so it shares no cores with
  // the next run.
  const plain = await run('plain');
  await compactionSettled(s.svc.url, 'plain');
  const parted = await run('parted');
  const atCommit = await filesPerPartition(s.svc.url, 'parted');
  const t0 = Date.now();
  let after = atCommit;
  while (after.max > 1 && Date.now() - t0 < 180_000) {
    await new Promise((r) => setTimeout(r, 1000));
    after = await filesPerPartition(s.svc.url, 'parted');
  }
  const settleSecs = (Date.now() - t0) / 1000;
  const parted2 = await run('parted2');
  for (let t1 = Date.now(); Date.now() - t1 < 180_000; ) {
    if ((await filesPerPartition(s.svc.url, 'parted2')).max <= 1) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const plain2 = await run('plain2');
  const d = (await (await fetch(`${s.svc.url}/tables/parted`)).json()) as {
    writer?: { compactions: number; compactionsFailed: number };
  };
  await stop(s);
  // Rates of the two runs of each kind, combined as their total rows over total time.
  const rate = (a: number, b: number) => (2 * a * b) / (a + b);
  const ratio = rate(parted, parted2) / rate(plain, plain2);
  report({
    scenario: 'append-partitioned',
    rows: n,
    partitionBy: 'day(at), bucket[16](id)',
    rowsPerSec: Math.round(rate(parted, parted2)),
    unpartitionedRowsPerSec: Math.round(rate(plain, plain2)),
    runs: `plain ${Math.round(plain)}, partitioned ${Math.round(parted)}, ${Math.round(parted2)}, plain ${Math.round(plain2)}`,
    vsUnpartitioned: +ratio.toFixed(3),
    partitions: after.partitions,
    filesPerPartitionAtCommit: atCommit.mean,
    filesPerPartitionMax: after.max,
    filesPerPartitionMean: after.mean,
    compactedAfterSec: +settleSecs.toFixed(1),
    compactionsFailed: d.writer?.compactionsFailed ?? 0,
    targetsMet: ratio >= 0.7 && after.max <= 1,
  });
}

/**
 * Kinesis records: the bench's insert bodies (1,000 rows) as the log writes them, plain JSON and
 * Brotli-compressed, and what that means for one shard, which takes 1 MiB/s and 1,000 records/s
 * of writes (arithmetic from the measured bytes, not a Kinesis run: kinesalite enforces no limits).
 */
/** The child processes of a process (`npm run local`'s emulators), from /proc (Linux). */
function childPids(pid: number | undefined): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * `npm run local` (the AWS shape on emulators) against `npm start`, the same append in the same
 * run: where the difference goes, by process.
 */
async function appendLocalScenario(): Promise<void> {
  const n = SIZES.localAppend;
  const list = insertBodies(n);
  const rate: Record<string, number> = {};
  const cpu: Record<string, number> = {};
  for (const entry of ['start', 'local'] as const) {
    const s = await service({}, entry);
    await createBenchTable(s.svc.url, 'append');
    const emulators = childPids(s.svc.child.pid);
    const own0 = processCpuSeconds(s.svc.child.pid);
    const emu0 = emulators.reduce((t, p) => t + processCpuSeconds(p), 0);
    const secs = await timed(async () => {
      await drive(`${s.svc.url}/tables/append/rows`, list);
      await post(`${s.svc.url}/tables/append/flush`, '');
    });
    rate[entry] = n / secs;
    cpu[entry] = (processCpuSeconds(s.svc.child.pid) - own0) / secs;
    if (entry === 'local')
      cpu.emulators = (emulators.reduce((t, p) => t + processCpuSeconds(p), 0) - emu0) / secs;
    await stop(s);
  }
  report({
    scenario: 'append-local',
    rows: n,
    startRowsPerSec: Math.round(rate.start),
    localRowsPerSec: Math.round(rate.local),
    localVsStart: +(rate.local / rate.start).toFixed(3),
    startServiceCores: +cpu.start.toFixed(2),
    localServiceCores: +cpu.local.toFixed(2),
    localEmulatorCores: +cpu.emulators.toFixed(2),
  });
}

async function kinesisRecordsScenario(): Promise<void> {
  const bodies = 200;
  let plainBytes = 0;
  let plainRecords = 0;
  let zBytes = 0;
  let zRecords = 0;
  let compressSecs = 0;
  for (let b = 0; b < bodies; b++) {
    let body = '{"ops":[';
    for (let i = b * BATCH; i < (b + 1) * BATCH; i++)
      body += `${i > b * BATCH ? ',' : ''}{"op":"insert","row":${rowJson(i)}}`;
    const bytes = new TextEncoder().encode(`${body}]}`);
    for (const r of encodeTransaction('append', 'x'.repeat(36), bytes, MAX_RECORD_BYTES - 6, false)) {
      plainBytes += r.length;
      plainRecords++;
    }
    const t0 = performance.now();
    const z = encodeTransaction('append', 'x'.repeat(36), bytes, MAX_RECORD_BYTES - 6, true);
    compressSecs += (performance.now() - t0) / 1000;
    for (const r of z) {
      zBytes += r.length;
      zRecords++;
    }
  }
  const rows = bodies * BATCH;
  // A shard takes 1 MiB/s and 1,000 records/s; whichever binds first.
  const perShard = (bytes: number, records: number) =>
    Math.round(Math.min((2 ** 20 / bytes) * rows, (1000 / records) * rows));
  report({
    scenario: 'kinesis-records',
    rows,
    plainBytesPerRow: +(plainBytes / rows).toFixed(1),
    compressedBytesPerRow: +(zBytes / rows).toFixed(1),
    ratio: +(plainBytes / zBytes).toFixed(2),
    compressUsPerRow: +((compressSecs * 1e6) / rows).toFixed(2),
    plainRowsPerSecPerShard: perShard(plainBytes, plainRecords),
    compressedRowsPerSecPerShard: perShard(zBytes, zRecords),
  });
}

const scenarios: [string, () => Promise<void>][] = [
  ['append', appendScenario],
  ['append-arrow', appendArrowScenario],
  ['append-partitioned', appendPartitionedScenario],
  ['upsert', upsertScenario],
  ['freshness', freshnessScenario],
  ['read-planning', readPlanningScenario],
  ['memory', memoryScenario],
  ['overload', overloadScenario],
  ['recovery', recoveryScenario],
  ['soak', soakScenario],
  ['kinesis-records', kinesisRecordsScenario],
  ['append-local', appendLocalScenario],
];

const started = Date.now();
for (const [name, fn] of scenarios) {
  if (only && !only.split(',').includes(name)) continue;
  try {
    await fn();
  } catch (e) {
    console.error(`scenario ${name} failed: ${(e as Error).stack ?? e}`);
    if (running)
      console.error(`service (exit code ${running.child.exitCode}):\n${running.output().slice(-4000)}`);
    await running?.kill();
    process.exit(1);
  }
}

const machine = `${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
console.log(
  `\n${quick ? 'quick' : 'full'} run on ${machine}, ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
);
const table = results.map((r) => {
  const { scenario, ...rest } = r;
  return `| ${scenario} | ${Object.entries(rest)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')} |`;
});
console.log(['| scenario | figures |', '| --- | --- |', ...table].join('\n'));
if (!only) {
  const outDir = path.join(import.meta.dirname, 'results');
  await fs.mkdir(outDir, { recursive: true });
  const file = quick ? 'latest-quick.json' : 'latest.json';
  await fs.writeFile(
    path.join(outDir, file),
    `${JSON.stringify({ date: new Date().toISOString(), quick, machine, results }, null, 2)}\n`,
  );
  await fs.writeFile(
    path.join(outDir, quick ? 'chart-quick.svg' : 'chart.svg'),
    renderChart(results, machine),
  );
}
