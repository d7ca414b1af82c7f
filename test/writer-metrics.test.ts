/**
 * The writer's CloudWatch metrics (lib/aws/writer-metrics.ts): the embedded-metric-format line
 * it prints is read back and checked — the event-loop delay of a stall made on purpose, the
 * memory held against the budget, tables by state, and the writes refused for backpressure.
 * What CloudWatch Logs then does with the line (extracting metrics) cannot run here.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startWriterMetrics } from '../lib/aws/writer-metrics.ts';
import { serviceConfigFromEnv } from '../lib/config.ts';
import { type EmbeddedService, startEmbedded } from '../lib/embedded/embedded-service.ts';
import { silentLogger } from '../lib/util/logger.ts';

let svc: EmbeddedService | undefined;
let dir: string | undefined;
afterAll(async () => {
  await svc?.close({ flush: false });
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** The EMF lines printed while `fn` runs. */
function emfLines(fn: () => void): Record<string, unknown>[] {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = String(chunk);
    if (text.includes('"_aws"')) lines.push(text);
    else return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    return true;
  }) as typeof process.stdout.write;
  try {
    fn();
  } finally {
    process.stdout.write = write;
  }
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('writer metrics', () => {
  it('publishes event-loop delay, memory, tables by state and backpressure refusals in EMF', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlmetrics-'));
    svc = await startEmbedded(
      serviceConfigFromEnv({
        PORT: '0',
        MOONLINK_DATA_DIR: dir,
        MOONLINK_MEMORY_BUDGET_BYTES: String(2 * 1024 * 1024),
        MOONLINK_MEMSLICE_MAX_BYTES: String(1 << 30),
        MOONLINK_MEMSLICE_MAX_ROWS: '10000000',
      }),
      silentLogger,
    );
    const post = (p: string, body: unknown) =>
      fetch(svc!.url + p, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect(
      (
        await post('/tables', {
          name: 'm',
          columns: [
            { name: 'id', type: 'long', nullable: false },
            { name: 'v', type: 'string' },
          ],
          primaryKey: ['id'],
        })
      ).status,
    ).toBe(201);
    const metrics = startWriterMetrics(
      svc.writer,
      { namespace: 'MoonlinkTest', writerGroup: 3, intervalMs: 3_600_000 },
      silentLogger,
    );
    // Past the 2 MiB budget: writes are refused until a flush catches up.
    let refused = 0;
    for (let b = 0; b < 40 && refused === 0; b++) {
      const ops = Array.from({ length: 2000 }, (_, i) => ({
        op: 'insert',
        row: { id: b * 2000 + i, v: 'x'.repeat(100) },
      }));
      const r = await post('/tables/m/rows', { ops });
      await r.text();
      if (r.status === 503) refused++;
    }
    expect(refused).toBe(1);
    // A 300 ms stall of the main thread.
    const until = performance.now() + 300;
    while (performance.now() < until) {
      // busy
    }
    await new Promise((r) => setTimeout(r, 20));
    const lines = emfLines(() => metrics.publish());
    const emf = lines.find((l) => l.Table === undefined)!;
    expect(emf).toBeDefined();
    // Per table: its own line under the Table dimension.
    const table = lines.find((l) => l.Table === 'm')!;
    expect(table).toBeDefined();
    expect(
      (table._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] }).CloudWatchMetrics[0].Dimensions[0],
    ).toEqual(expect.arrayContaining(['WriterGroup', 'Table']));
    // Rows applied, none committed to Iceberg yet: the commit lag grows.
    expect(table.TableCommitLagSeconds as number).toBeGreaterThan(0);
    expect(table.TableRows as number).toBeGreaterThan(0);
    expect(table.TableDeadLetters).toBe(0);
    expect(emf.CommitLagSeconds).toBe(table.TableCommitLagSeconds);
    expect(emf.DeadLetters).toBe(0);
    expect(emf.PostgresSlotLagBytes).toBe(0);
    const aws = emf._aws as {
      CloudWatchMetrics: {
        Namespace: string;
        Dimensions: string[][];
        Metrics: { Name: string; Unit: string }[];
      }[];
    };
    const directive = aws.CloudWatchMetrics[0];
    expect(directive.Namespace).toBe('MoonlinkTest');
    expect(directive.Dimensions[0]).toEqual(expect.arrayContaining(['service', 'WriterGroup']));
    expect(emf.service).toBe('moonlink-writer');
    expect(emf.WriterGroup).toBe('3');
    expect(directive.Metrics.find((m) => m.Name === 'EventLoopDelayMax')?.Unit).toBe('Milliseconds');
    expect(emf.EventLoopDelayMax as number).toBeGreaterThanOrEqual(250);
    expect(emf.EventLoopDelayP99 as number).toBeGreaterThan(0);
    expect(emf.MemoryUsedBytes as number).toBeGreaterThan(0);
    expect(emf.MemoryBudgetUsed as number).toBeGreaterThan(0);
    expect(emf.ResidentMemoryBytes as number).toBeGreaterThan(50 * 1024 * 1024);
    expect(emf.TablesOpen).toBe(1);
    expect(emf.TablesDamaged).toBe(0);
    expect(emf.BackpressureRefusals).toBe(1);
    // The next interval starts afresh: no stall, no refusals since.
    const next = emfLines(() => metrics.publish()).find((l) => l.Table === undefined)!;
    expect(next.EventLoopDelayMax as number).toBeLessThan(250);
    expect(next.BackpressureRefusals).toBe(0);
    // Once committed, the lag is back to 0.
    expect((await post('/tables/m/flush', {})).status).toBe(200);
    const after = emfLines(() => metrics.publish());
    expect(after.find((l) => l.Table === 'm')?.TableCommitLagSeconds).toBe(0);
    expect(after.find((l) => l.Table === undefined)?.CommitLagSeconds).toBe(0);
    emfLines(() => metrics.close());
  });
});
