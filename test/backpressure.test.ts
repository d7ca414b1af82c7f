/**
 * Backpressure against the service process: eight clients write 1,000-row batches into a
 * writer with a small memory budget and slices that never flush on their own. Past the budget,
 * writes get 503 `backpressure` with Retry-After; reads and /health keep answering; the writer
 * flushes to catch up; every batch a client retried lands exactly once.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type ServiceProcess, startServiceProcess } from './support/service-process.ts';

const BUDGET = 24 * 1024 * 1024;
let svc: ServiceProcess | undefined;
let dir: string | undefined;
afterAll(async () => {
  await svc?.kill('SIGKILL');
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('memory budget', () => {
  it('refuses writes past the budget with 503 backpressure + Retry-After, keeps reads up, catches up, loses nothing', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlbp-'));
    svc = await startServiceProcess({
      MOONLINK_DATA_DIR: dir,
      MOONLINK_MEMORY_BUDGET_BYTES: String(BUDGET),
      MOONLINK_MEMSLICE_MAX_BYTES: String(1 << 30),
      MOONLINK_MEMSLICE_MAX_ROWS: '10000000',
      MOONLINK_COMMIT_INTERVAL_MS: '600000',
      MOONLINK_SNAPSHOT_INTERVAL_MS: '200',
    });
    const url = svc.url;
    const created = await fetch(`${url}/tables`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'bp',
        columns: [
          { name: 'id', type: 'long', nullable: false },
          { name: 'v', type: 'string' },
        ],
        primaryKey: ['id'],
      }),
    });
    expect(created.status).toBe(201);

    const CLIENTS = 8;
    const BATCHES = 40;
    let refused = 0;
    let withoutRetryAfter = 0;
    let otherErrors = 0;
    let maxUsed = 0;
    let stop = false;
    const reads = { ok: 0, failed: 0 };
    const reader = (async () => {
      while (!stop) {
        for (const p of ['/tables/bp/rows?limit=1', '/health', '/tables/bp']) {
          const r = await fetch(url + p);
          const body = (await r.json()) as { writer?: { memory?: { usedBytes: number } } };
          if (r.status === 200) reads.ok++;
          else reads.failed++;
          maxUsed = Math.max(maxUsed, body.writer?.memory?.usedBytes ?? 0);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const client = async (c: number): Promise<void> => {
      for (let b = 0; b < BATCHES; b++) {
        const first = (c * BATCHES + b) * 1000;
        const body = JSON.stringify({
          ops: Array.from({ length: 1000 }, (_, i) => ({
            op: 'insert',
            row: { id: first + i, v: `client ${c} batch ${b} row ${i} ${'x'.repeat(80)}` },
          })),
        });
        for (;;) {
          const r = await fetch(`${url}/tables/bp/rows`, { method: 'POST', body });
          const j = (await r.json()) as { error?: { code: string } };
          if (r.status === 200) break;
          if (r.status === 503 && j.error?.code === 'backpressure') {
            refused++;
            if (!r.headers.get('retry-after')) withoutRetryAfter++;
            // A client honours Retry-After; this one waits a fraction of it to keep the test short.
            await new Promise((res) => setTimeout(res, 100));
            continue;
          }
          otherErrors++;
          throw new Error(`write: ${r.status} ${JSON.stringify(j)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    stop = true;
    await reader;
    expect(refused).toBeGreaterThan(0);
    expect(withoutRetryAfter).toBe(0);
    expect(otherErrors).toBe(0);
    expect(reads.failed).toBe(0);
    expect(reads.ok).toBeGreaterThan(0);
    // Concurrent writes are checked before they land, so the writer may pass its budget by the
    // requests in flight, not more.
    expect(maxUsed).toBeLessThanOrEqual(2 * BUDGET);
    const flushed = (await (await fetch(`${url}/tables/bp/flush`, { method: 'POST' })).json()) as {
      lsn: number;
    };
    // Describe counts the newest published read snapshot, which follows the commit within a
    // snapshot interval: read it once it covers the flush.
    let d = { rows: 0, lsn: 0 };
    for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
      d = (await (await fetch(`${url}/tables/bp`)).json()) as { rows: number; lsn: number };
      if (Number(d.lsn) >= Number(flushed.lsn)) break;
    }
    expect(Number(d.lsn)).toBeGreaterThanOrEqual(Number(flushed.lsn));
    expect(d.rows).toBe(CLIENTS * BATCHES * 1000);
    console.log(
      `backpressure: ${CLIENTS * BATCHES} batches from ${CLIENTS} clients, ${refused} refused with 503 + Retry-After, ${reads.ok} reads answered meanwhile, peak ${Math.round(maxUsed / 2 ** 20)} MiB of a ${BUDGET / 2 ** 20} MiB budget, ${d.rows} rows, each once`,
    );
  }, 180_000);
});
