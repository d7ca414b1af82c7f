/**
 * Nothing acknowledged is lost, against the real service process (`npm start`'s entry point):
 * a disk that fills up (a real 64 MB tmpfs when this process may mount one), a byte flipped in
 * the log after a SIGKILL, a deleted data file, a data folder restored at another path, and a
 * restart right after a SIGKILL of the whole process group, 20 times. Each ends with every
 * acknowledged row present exactly once, or the table loudly damaged.
 */

import { execFile, execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { asLsn } from '../lib/lsn.ts';
import { type ServiceProcess, startServiceProcess } from './support/service-process.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..');
const dirs: string[] = [];
const procs: ServiceProcess[] = [];
const mounts: string[] = [];

async function tmp(prefix = 'mldur-'): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const p of procs.splice(0)) await p.kill('SIGKILL');
  for (const m of mounts.splice(0)) execFileSync('umount', ['-l', m]);
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

/** SCALE_TABLES=10000 SCALE_FILES=1024 for the full-size run (README, "Limits"). */
const MANY_TABLES = Number(process.env.SCALE_TABLES ?? 1000);
const MANY_FILES = Number(process.env.SCALE_FILES ?? 256);

const ENV = {
  MOONLINK_SNAPSHOT_INTERVAL_MS: '200',
  // Rows stay in the log (no Iceberg commit) unless a test flushes.
  MOONLINK_COMMIT_INTERVAL_MS: '600000',
  LOG_LEVEL: 'INFO',
};

async function start(dataDir: string, extra: Record<string, string> = {}): Promise<ServiceProcess> {
  const p = await startServiceProcess({ ...ENV, MOONLINK_DATA_DIR: dataDir, ...extra });
  procs.push(p);
  return p;
}

async function stop(p: ServiceProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await p.kill(signal);
  procs.splice(procs.indexOf(p), 1);
}

async function api(
  url: string,
  method: string,
  p: string,
  body?: unknown,
): Promise<{ status: number; json: any; headers: Headers }> {
  const r = await fetch(url + p, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : undefined, headers: r.headers };
}

async function createTable(url: string, name: string): Promise<void> {
  const r = await api(url, 'POST', '/tables', {
    name,
    columns: [
      { name: 'id', type: 'long', nullable: false },
      { name: 'v', type: 'string' },
    ],
    primaryKey: ['id'],
  });
  expect(r.status).toBe(201);
}

function batch(first: number, n: number, pad = 0): unknown {
  return {
    ops: Array.from({ length: n }, (_, i) => ({
      op: 'insert',
      row: { id: first + i, v: `row ${first + i} ${'p'.repeat(pad)}` },
    })),
  };
}

/** Every row of the table at or after `minLsn`, all pages. */
async function scanIds(url: string, table: string, minLsn: bigint | string = 0n): Promise<number[]> {
  const ids: number[] = [];
  let cursor: string | undefined;
  for (;;) {
    const q = `minLsn=${minLsn}&limit=100000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const r = await api(url, 'GET', `/tables/${table}/rows?${q}`);
    if (r.status !== 200) throw new Error(`scan ${table}: ${r.status} ${JSON.stringify(r.json)}`);
    for (const row of r.json.rows) ids.push(Number(row.id));
    cursor = r.json.nextCursor;
    if (!cursor) return ids.sort((a, b) => a - b);
  }
}

/** `GET /health` once no table is still replaying its log (up to 20 s). */
async function settledHealth(url: string): Promise<{ status: number; json: any }> {
  for (let i = 0; ; i++) {
    const h = await api(url, 'GET', '/health');
    const recovering = (h.json?.problems ?? []).some((p: { state: string }) => p.state === 'recovering');
    if (!recovering || i >= 200) return h;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function expectExactly(got: number[], want: Iterable<number>): void {
  const w = [...want].sort((a, b) => a - b);
  expect(got.length).toBe(w.length);
  expect(new Set(got).size).toBe(got.length);
  expect(got).toEqual(w);
}

function canMount(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a tmpfs';
  return undefined;
}

describe('durability against the real service', () => {
  const mountSkip = canMount();
  it.skipIf(mountSkip !== undefined)(
    `a full disk (real 64 MB tmpfs): 507 storage_full with Retry-After, health says so, writing resumes when space returns, every acknowledged row survives a SIGKILL${mountSkip ? ` — skipped: ${mountSkip}` : ''}`,
    async () => {
      const dir = await tmp('mlfull-');
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', dir]);
      } catch (e) {
        console.log(`disk-full test: could not mount a tmpfs (${(e as Error).message}); nothing checked`);
        return;
      }
      mounts.push(dir);
      const dataDir = path.join(dir, 'data');
      let svc = await start(dataDir);
      await createTable(svc.url, 'full');
      // Most of the space goes to a filler, so the table's own files fill the rest quickly.
      const filler = path.join(dir, 'filler');
      await fs.writeFile(filler, Buffer.alloc(44 * 1024 * 1024, 1));
      const acked = new Set<number>();
      let refused = 0;
      let next = 0;
      let lastLsn = asLsn(0n);
      for (let i = 0; i < 2000 && refused < 20; i++) {
        const r = await api(svc.url, 'POST', '/tables/full/rows', batch(next, 1000, 60));
        if (r.status === 200) {
          for (let k = 0; k < 1000; k++) acked.add(next + k);
          lastLsn = asLsn(BigInt(r.json.lsn));
        } else {
          expect(r.status, JSON.stringify(r.json)).toBe(507);
          expect(r.json.error.code).toBe('storage_full');
          expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
          refused++;
        }
        next += 1000;
      }
      expect(refused).toBe(20);
      expect(acked.size).toBeGreaterThan(0);
      const unhealthy = await api(svc.url, 'GET', '/health');
      expect(unhealthy.status).toBe(503);
      expect(JSON.stringify(unhealthy.json.problems)).toMatch(/storage_full/);
      expect((await api(svc.url, 'GET', '/health/live')).status).toBe(200);

      await fs.rm(filler);
      // Space is back: without a restart, health recovers and writes are acknowledged again.
      let healthy = 0;
      for (let i = 0; i < 50 && healthy !== 200; i++) {
        healthy = (await api(svc.url, 'GET', '/health')).status;
        if (healthy !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(healthy).toBe(200);
      for (let i = 0; i < 20; i++) {
        const r = await api(svc.url, 'POST', '/tables/full/rows', batch(next, 1000, 60));
        expect(r.status, JSON.stringify(r.json)).toBe(200);
        for (let k = 0; k < 1000; k++) acked.add(next + k);
        lastLsn = asLsn(BigInt(r.json.lsn));
        next += 1000;
      }
      await stop(svc, 'SIGKILL');
      svc = await start(dataDir);
      expectExactly(await scanIds(svc.url, 'full', lastLsn), acked);
      console.log(
        `disk-full test: ${acked.size} acknowledged rows, ${refused} writes refused with 507, all rows back after SIGKILL`,
      );
    },
    180_000,
  );

  it('a byte flipped in the log after a SIGKILL: the table opens damaged (reads of the prefix, writes 503), evidence kept; npm run repair skips exactly the bad record', async () => {
    const dataDir = path.join(await tmp(), 'data');
    let svc = await start(dataDir);
    await createTable(svc.url, 'd');
    await createTable(svc.url, 'other');
    const lsns: bigint[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await api(svc.url, 'POST', '/tables/d/rows', batch(i * 10, 10));
      expect(r.status).toBe(200);
      lsns.push(BigInt(r.json.lsn));
    }
    expect((await api(svc.url, 'POST', '/tables/other/rows', batch(0, 5))).status).toBe(200);
    await stop(svc, 'SIGKILL');
    const segDir = path.join(dataDir, 'log', 'd');
    const seg = path.join(segDir, (await fs.readdir(segDir)).find((n) => n.endsWith('.seg'))!);
    const bytes = await fs.readFile(seg);
    bytes[Math.floor(bytes.length / 2)] ^= 0x5a;
    await fs.writeFile(seg, bytes);

    svc = await start(dataDir);
    const health = await settledHealth(svc.url);
    expect(health.status).toBe(503);
    expect(health.json.problems).toEqual([
      expect.objectContaining({
        table: 'd',
        state: 'damaged',
        error: expect.objectContaining({ code: 'table_damaged', segment: path.basename(seg) }),
      }),
    ]);
    expect((await api(svc.url, 'GET', '/health/live')).status).toBe(200);
    const described = await api(svc.url, 'GET', '/tables/d');
    expect(described.json.state).toBe('damaged');
    expect(described.json.problem.offset).toBeGreaterThan(0);
    const damagedLsn = BigInt(described.json.problem.lsn);
    const refused = await api(svc.url, 'POST', '/tables/d/rows', batch(100_000, 1));
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe('table_damaged');
    // Reads serve the intact prefix, never less and never a row past the damage.
    const prefix = lsns.filter((l) => l < damagedLsn).length;
    expectExactly(
      await scanIds(svc.url, 'd', lsns[prefix - 1]),
      Array.from({ length: prefix * 10 }, (_, i) => i),
    );
    // The other table is unaffected.
    expect((await api(svc.url, 'POST', '/tables/other/rows', batch(5, 5))).status).toBe(200);
    await stop(svc);
    expect(await fs.readFile(seg)).toEqual(bytes); // untouched

    const report = await run(
      process.execPath,
      ['--import', 'tsx', 'lib/embedded/repair-main.ts', '--table', 'd'],
      {
        cwd: ROOT,
        env: { ...process.env, MOONLINK_DATA_DIR: dataDir },
      },
    ).catch((e) => e as { code: number; stdout: string; stderr: string });
    expect((report as { code?: number }).code).toBe(3); // damaged, report only
    expect(JSON.parse(report.stdout).damage.segment).toBe(path.basename(seg));
    const repaired = await run(
      process.execPath,
      ['--import', 'tsx', 'lib/embedded/repair-main.ts', '--table', 'd', '--skip-damaged'],
      { cwd: ROOT, env: { ...process.env, MOONLINK_DATA_DIR: dataDir } },
    );
    const r = JSON.parse(repaired.stdout);
    expect(r.repaired).toBe(true);
    expect(r.skipped).toEqual([{ from: String(damagedLsn), to: String(damagedLsn) }]);

    svc = await start(dataDir);
    expect((await settledHealth(svc.url)).status).toBe(200);
    const lost = Number(damagedLsn - lsns[0]);
    const want = Array.from({ length: 400 }, (_, i) => i).filter((id) => Math.floor(id / 10) !== lost);
    expectExactly(await scanIds(svc.url, 'd', lsns.at(-1)!), want);
    const after = await api(svc.url, 'POST', '/tables/d/rows', batch(100_000, 1));
    expect(after.status).toBe(200);
    expect(BigInt(after.json.lsn)).toBeGreaterThan(lsns.at(-1)!); // LSNs never reused
    expect((await fs.readdir(r.keptIn)).includes(path.basename(seg))).toBe(true);
  }, 120_000);

  it('a deleted data file: the table is damaged with data_file_missing naming it; other tables unaffected', async () => {
    const dataDir = path.join(await tmp(), 'data');
    let svc = await start(dataDir);
    await createTable(svc.url, 'm');
    await createTable(svc.url, 'fine');
    expect((await api(svc.url, 'POST', '/tables/m/rows', batch(0, 100))).status).toBe(200);
    expect((await api(svc.url, 'POST', '/tables/fine/rows', batch(0, 10))).status).toBe(200);
    expect((await api(svc.url, 'POST', '/tables/m/flush')).status).toBe(200);
    await stop(svc);
    const dataFiles = path.join(dataDir, 'objects', 'tables', 'm', 'data');
    const parquet = (await fs.readdir(dataFiles)).filter((n) => n.endsWith('.parquet'));
    expect(parquet.length).toBeGreaterThan(0);
    await fs.rm(path.join(dataFiles, parquet[0]));

    svc = await start(dataDir);
    const health = await settledHealth(svc.url);
    expect(health.status).toBe(503);
    expect(health.json.problems).toEqual([
      expect.objectContaining({
        table: 'm',
        state: 'damaged',
        error: expect.objectContaining({
          code: 'data_file_missing',
          object: expect.stringContaining(parquet[0]),
        }),
      }),
    ]);
    expect((await api(svc.url, 'GET', '/tables/m')).json.state).toBe('damaged');
    const write = await api(svc.url, 'POST', '/tables/m/rows', batch(1000, 1));
    expect(write.status).toBe(503);
    expect(write.json.error.code).toBe('table_damaged');
    const read = await api(svc.url, 'GET', '/tables/m/rows');
    expect(read.status).toBe(503);
    expect(read.json.error.code).toBe('data_file_missing');
    expect(read.json.error.object).toContain(parquet[0]);
    expectExactly(
      await scanIds(svc.url, 'fine'),
      Array.from({ length: 10 }, (_, i) => i),
    );
    expect((await api(svc.url, 'POST', '/tables/fine/rows', batch(10, 1))).status).toBe(200);
  }, 120_000);

  it('a data folder restored at another path opens every table, replays its log and reads back every row', async () => {
    const dataDir = path.join(await tmp(), 'data');
    let svc = await start(dataDir);
    await createTable(svc.url, 'r1');
    await createTable(svc.url, 'r2');
    const acked = { r1: new Set<number>(), r2: new Set<number>() };
    let last = { r1: 0n, r2: 0n };
    for (let i = 0; i < 30; i++) {
      for (const t of ['r1', 'r2'] as const) {
        const r = await api(svc.url, 'POST', `/tables/${t}/rows`, batch(i * 10, 10));
        expect(r.status).toBe(200);
        for (let k = 0; k < 10; k++) acked[t].add(i * 10 + k);
        last = { ...last, [t]: BigInt(r.json.lsn) };
      }
      // Half committed to Iceberg (files under the old path), half only in the log.
      if (i === 14) expect((await api(svc.url, 'POST', '/tables/r1/flush')).status).toBe(200);
    }
    await stop(svc, 'SIGKILL');
    const moved = path.join(await tmp('mlmoved-'), 'restored');
    // As an operator would; a killed service leaves its lock socket, which cp -a copies as is.
    await run('cp', ['-a', dataDir, moved]);
    await fs.rm(dataDir, { recursive: true, force: true });

    svc = await start(moved);
    expect((await settledHealth(svc.url)).status).toBe(200);
    expect((await api(svc.url, 'GET', '/tables')).json.tables.length).toBe(2);
    expectExactly(await scanIds(svc.url, 'r1', last.r1), acked.r1);
    expectExactly(await scanIds(svc.url, 'r2', last.r2), acked.r2);
    // And it goes on: writes, a commit, a restart.
    expect((await api(svc.url, 'POST', '/tables/r1/rows', batch(1000, 5))).status).toBe(200);
    for (let k = 0; k < 5; k++) acked.r1.add(1000 + k);
    const flushed = await api(svc.url, 'POST', '/tables/r1/flush');
    expect(flushed.status).toBe(200);
    await stop(svc);
    svc = await start(moved);
    expectExactly(await scanIds(svc.url, 'r1', flushed.json.lsn), acked.r1);
  }, 120_000);

  it(`${MANY_TABLES} tables under ulimit -n ${MANY_FILES}: every table opens, takes writes and reads back`, async () => {
    const dataDir = path.join(await tmp(), 'data');
    let svc = await start(dataDir);
    const names = Array.from({ length: MANY_TABLES }, (_, i) => `t${i}`);
    const each = async (fn: (t: string, i: number) => Promise<void>): Promise<void> => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < names.length) {
            const i = next++;
            await fn(names[i], i);
          }
        }),
      );
    };
    const started = Date.now();
    await each((t) => createTable(svc.url, t));
    const createdMs = Date.now() - started;
    await each(async (t, i) => {
      expect((await api(svc.url, 'POST', `/tables/${t}/rows`, batch(i, 1))).status).toBe(200);
    });
    await stop(svc, 'SIGKILL');
    const restarted = Date.now();
    svc = await startServiceProcess(
      { ...ENV, MOONLINK_DATA_DIR: dataDir, MOONLINK_LOG_MAX_OPEN_FILES: String(MANY_FILES / 4) },
      120_000,
      { openFileLimit: MANY_FILES },
    );
    procs.push(svc);
    let health = await api(svc.url, 'GET', '/health');
    for (let i = 0; i < 600 && health.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 200));
      health = await api(svc.url, 'GET', '/health');
    }
    expect(health.status, JSON.stringify(health.json)).toBe(200);
    const openMs = Date.now() - restarted;
    const lsns = new Map<string, bigint>();
    await each(async (t, i) => {
      const r = await api(svc.url, 'POST', `/tables/${t}/rows`, batch(MANY_TABLES + i, 1));
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      lsns.set(t, BigInt(r.json.lsn));
    });
    for (let i = 0; i < names.length; i += Math.ceil(names.length / 50)) {
      expectExactly(await scanIds(svc.url, names[i], lsns.get(names[i])!), [i, MANY_TABLES + i]);
    }
    expect(svc.output()).not.toMatch(/EMFILE/);
    console.log(
      `many tables: ${MANY_TABLES} created in ${createdMs} ms; reopened under ulimit -n ${MANY_FILES} and healthy in ${openMs} ms`,
    );
  }, 600_000);

  it('restarts at once after a SIGKILL of the whole process group, 20 times (the lock dies with its process)', async () => {
    const dataDir = path.join(await tmp(), 'data');
    let svc = await start(dataDir);
    await createTable(svc.url, 'k');
    const acked = new Set<number>();
    let lastLsn = asLsn(0n);
    for (let round = 0; round < 20; round++) {
      const r = await api(svc.url, 'POST', '/tables/k/rows', batch(round * 10, 10));
      expect(r.status).toBe(200);
      for (let i = 0; i < 10; i++) acked.add(round * 10 + i);
      lastLsn = asLsn(BigInt(r.json.lsn));
      // No wait between the kill and the next start.
      void svc.kill('SIGKILL');
      procs.splice(procs.indexOf(svc), 1);
      svc = await start(dataDir);
    }
    expectExactly(await scanIds(svc.url, 'k', lastLsn), acked);
    // A second process on the same folder is refused while the first lives.
    await expect(startServiceProcess({ ...ENV, MOONLINK_DATA_DIR: dataDir }, 15_000)).rejects.toThrow(
      /in use by another moonlink process/,
    );
  }, 180_000);
});
