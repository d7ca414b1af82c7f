/**
 * The service's life cycle as a process: SIGTERM flushes every table (everything acknowledged
 * is in Iceberg and the log is empty afterwards), and a long upsert-heavy run with compaction
 * keeps the number of data files bounded with files near the target size.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileCatalog } from '../lib/catalog/file-catalog.ts';
import { IcebergTable } from '../lib/iceberg/iceberg-table.ts';
import { LocalObjectStore } from '../lib/store/local-object-store.ts';
import { rng } from './support/model.ts';
import { startServiceProcess } from './support/service-process.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

async function post(url: string, body: unknown): Promise<Record<string, any>> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(r.status, await r.clone().text()).toBeLessThan(300);
  return (await r.json()) as Record<string, any>;
}

describe('service life cycle', () => {
  it('SIGTERM commits everything acknowledged to Iceberg before exiting', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlterm-'));
    dirs.push(dir);
    const svc = await startServiceProcess({
      MOONLINK_DATA_DIR: dir,
      MOONLINK_COMMIT_INTERVAL_MS: '3600000',
      LOG_LEVEL: 'INFO',
    });
    await post(`${svc.url}/tables`, {
      name: 'orders',
      columns: [
        { name: 'id', type: 'long' },
        { name: 'v', type: 'string' },
      ],
      primaryKey: ['id'],
    });
    let lsn = 0;
    for (let b = 0; b < 20; b++) {
      lsn = (
        await post(`${svc.url}/tables/orders/rows`, {
          ops: Array.from({ length: 50 }, (_, i) => ({ op: 'upsert', row: { id: b * 50 + i, v: `v${b}` } })),
        })
      ).lsn;
    }
    expect(await svc.kill('SIGTERM')).toBe(0);
    expect(svc.output()).toContain('shutting down');
    const catalog = await FileCatalog.open(path.join(dir, 'catalog.json'));
    const pointer = await catalog.getPointer('orders');
    expect(pointer?.committedLsn).toBe(BigInt(lsn));
    const store = new LocalObjectStore(path.join(dir, 'objects'));
    const iceberg = await IcebergTable.load(store, pointer!.metadataKey!);
    expect(iceberg.currentSnapshot()!.summary['total-records']).toBe('1000');
    // The log has nothing left to replay.
    const segments = await fs.readdir(path.join(dir, 'log', 'orders'));
    let bytes = 0;
    for (const s of segments) bytes += (await fs.stat(path.join(dir, 'log', 'orders', s))).size;
    expect(bytes).toBe(0);
  });

  it('keeps files few and near the target size through a long upsert-heavy run', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlcompact-'));
    dirs.push(dir);
    const target = 256 * 1024;
    const svc = await startServiceProcess({
      MOONLINK_DATA_DIR: dir,
      MOONLINK_TARGET_FILE_BYTES: String(target),
      MOONLINK_COMPACT_MIN_SMALL_FILES: '2',
      MOONLINK_MEMSLICE_MAX_ROWS: '4000',
      MOONLINK_COMMIT_INTERVAL_MS: '500',
      MOONLINK_GC_INTERVAL_MS: '500',
      MOONLINK_GC_GRACE_MS: '0',
    });
    await post(`${svc.url}/tables`, {
      name: 'hot',
      columns: [
        { name: 'id', type: 'long' },
        { name: 'payload', type: 'string' },
        { name: 'n', type: 'double' },
      ],
      primaryKey: ['id'],
    });
    const r = rng(9);
    let lsn = 0;
    for (let b = 0; b < 150; b++) {
      const ops = Array.from({ length: 1000 }, () => {
        const id = Math.floor(r() * 30_000);
        return r() < 0.1
          ? { op: 'delete', row: { id } }
          : {
              op: 'upsert',
              row: { id, payload: `p-${id}-${b}-${'x'.repeat(Math.floor(r() * 60))}`, n: r() },
            };
      });
      lsn = (await post(`${svc.url}/tables/hot/rows`, { ops })).lsn;
    }
    await post(`${svc.url}/tables/hot/flush`, {});
    // Let compaction settle: a few commit/compaction turns.
    let described: Record<string, any> = {};
    for (let i = 0; i < 120; i++) {
      await new Promise((res) => setTimeout(res, 500));
      described = (await (await fetch(`${svc.url}/tables/hot`)).json()) as Record<string, any>;
      const small = (described.dataFiles as { sizeBytes: number }[]).filter(
        (f) => f.sizeBytes < target / 2,
      ).length;
      if (small <= 1) break;
    }
    await svc.kill('SIGTERM');
    const files = described.dataFiles as { sizeBytes: number; rowCount: number; deletedRows: number }[];
    const sizes = files.map((f) => f.sizeBytes).sort((a, b) => a - b);
    const small = sizes.filter((s) => s < target / 2);
    console.log(
      `compaction: 150,000 upserts/deletes over 30,000 keys → ${files.length} data files, sizes ${sizes.map((s) => `${Math.round(s / 1024)}K`).join(' ')} (target ${target / 1024}K), ${small.length} below half the target, ${files.reduce((s, f) => s + f.deletedRows, 0)} deleted rows still in files; lsn ${lsn}`,
    );
    expect(small.length).toBeLessThanOrEqual(1);
    expect(files.length).toBeLessThanOrEqual(Math.ceil(sizes.reduce((a, b) => a + b, 0) / (target / 2)) + 1);
    expect(described.rows).toBeGreaterThan(20_000);
    // Entries of files compaction replaced left the index: it holds about the files' rows.
    const fileRows = files.reduce((s, f) => s + f.rowCount, 0);
    console.log(`compaction: ${described.writer.indexEntries} index entries for ${fileRows} rows in files`);
    expect(described.writer.indexEntries).toBeLessThanOrEqual(1.2 * fileRows);
  });
});
