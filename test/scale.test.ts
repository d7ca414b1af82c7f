/**
 * The index and deletion-vector path at scale: 1,000,000 rows flushed to data files, then
 * 300,000 upserts and 100,000 deletes of rows already in those files (deletion-vector bits found
 * through the file index), with the index forced to spill part of its runs to disk. Counts,
 * sampled rows and the Iceberg commit are checked.
 */

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IcebergTable } from '../lib/iceberg/iceberg-table.ts';
import { asLsn, lsnAfter } from '../lib/lsn.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { SnapshotReader } from '../lib/read/snapshot-reader.ts';
import { buildSchema } from '../lib/schema/table-schema.ts';
import type { DecodedOp } from '../lib/txn/transaction.ts';
import { openTestTable } from './support/table-harness.ts';

const pool = new ParquetWorkerPool(2);
let spillDir: string;
afterAll(async () => {
  await pool.close();
  if (spillDir) await fs.rm(spillDir, { recursive: true, force: true });
});

const N = 1_000_000;

describe('index and deletion vectors at a million rows', () => {
  it('upserts and deletes rows in flushed files through the spilled index', async () => {
    spillDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlscale-'));
    const schema = buildSchema(
      [
        { name: 'id', type: 'long' },
        { name: 'v', type: 'long' },
      ],
      ['id'],
    );
    const { store, handler } = await openTestTable({
      name: 'big',
      schema,
      pool,
      spillDir,
      options: {
        memSliceMaxRows: 100_000,
        indexMemoryBytes: 4 * 1024 * 1024, // far below 1M entries × 16 bytes: runs spill
      },
    });
    let lsn = asLsn(0n);
    const batch = (ops: DecodedOp[]) => {
      lsn = lsnAfter(lsn);
      handler.apply(lsn, ops);
    };
    const row = (id: number, v: number): DecodedOp => ({
      op: 'insert',
      values: [BigInt(id), BigInt(v)],
      key: String(id),
    });
    for (let start = 0; start < N; start += 10_000) {
      batch(Array.from({ length: 10_000 }, (_, i) => row(start + i, 0)));
    }
    await handler.commit();
    let s = handler.status();
    expect(s.rows).toBe(N);
    expect(s.dataFiles).toBe(10);
    expect(s.indexEntries).toBe(N);
    expect(s.indexMemoryBytes).toBeLessThan(16 * N);

    // Upserts of existing keys: each becomes a deletion-vector bit plus a new row.
    for (let start = 0; start < 300_000; start += 10_000) {
      batch(
        Array.from({ length: 10_000 }, (_, i) => ({ ...row((start + i) * 3, 1), op: 'upsert' as const })),
      );
    }
    // Deletes of keys in files, and of keys that do not exist (no-ops).
    for (let start = 0; start < 100_000; start += 10_000) {
      batch(
        Array.from({ length: 10_000 }, (_, i) => {
          const id = i % 2 === 0 ? (start + i) * 3 + 1 : N + start + i;
          return { op: 'delete' as const, values: [BigInt(id), null], key: String(id) };
        }),
      );
    }
    const commit = await handler.commit();
    s = handler.status();
    expect(s.rows).toBe(N - 50_000);
    // Iceberg agrees: total records minus position deletes.
    const iceberg = await IcebergTable.load(store, store.keyFromUri(commit.metadataLocation!)!);
    const summary = iceberg.currentSnapshot()!.summary;
    expect(Number(summary['total-records']) - Number(summary['total-position-deletes'])).toBe(N - 50_000);
    expect(Number(summary['total-position-deletes'])).toBe(350_000);

    // Sampled rows through the read path.
    const snap = await handler.snapshotAtLeast(lsn);
    const reader = new SnapshotReader(store, () => pool);
    const rows = await reader.readAll(await reader.manifest(snap.objectKey), schema.fields);
    expect(rows.length).toBe(N - 50_000);
    const byId = new Map(rows.map((r) => [Number(r[0]), Number(r[1])]));
    expect(byId.get(0)).toBe(1); // upserted
    expect(byId.get(3)).toBe(1);
    expect(byId.get(2)).toBe(0); // untouched
    expect(byId.has(1)).toBe(false); // deleted
    expect(byId.get(899_997)).toBe(1);
    expect(byId.get(999_999)).toBe(0);
    await handler.close();
  });
});
