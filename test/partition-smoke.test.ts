import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { icebergRead } from 'icebird';
import { afterAll, expect, it } from 'vitest';
import { IcebergTable } from '../lib/iceberg/iceberg-table.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { buildSchema } from '../lib/schema/table-schema.ts';
import { keyOf, rowCodec } from '../lib/schema/transaction.ts';
import { LocalObjectStore } from '../lib/store/local-object-store.ts';
import { serveFolder } from './support/static-server.ts';
import { openTestTable } from './support/table-harness.ts';

const pool = new ParquetWorkerPool(2);
afterAll(() => pool.close());

it('smoke', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlpart-'));
  const server = await serveFolder(dir);
  const store = new LocalObjectStore(dir, { locationBase: `${server.url}/` });
  const schema = buildSchema(
    [
      { name: 'id', type: 'long' },
      { name: 'at', type: 'timestamptz' },
      { name: 'v', type: 'string' },
    ],
    ['id'],
  );
  const { handler } = await openTestTable({
    name: 'p',
    schema,
    pool,
    store,
    partitionBy: [
      { column: 'at', transform: 'day' },
      { column: 'id', transform: 'bucket[4]' },
    ],
    sortBy: [{ column: 'v', direction: 'desc' }],
  });
  const codec = rowCodec(schema);
  const ops = [];
  for (let i = 0; i < 100; i++) {
    const values = [BigInt(i), BigInt(1_700_000_000_000_000 + (i % 3) * 86_400_000_000), `v${i}`];
    ops.push({ op: 'upsert' as const, values, key: keyOf(codec, values) });
  }
  handler.apply(1n, ops);
  const c = await handler.flush();
  const ice = await IcebergTable.load(store, new URL(c.metadataLocation!).pathname.slice(1));
  const st = await ice.currentState();
  console.log(st.dataFiles.map((d) => [d.key, d.recordCount, d.specId, d.partition]));
  const rows = await icebergRead({
    tableUrl: `${server.url}/${ice.tableRoot}`,
    metadataFileName: c.metadataLocation!.split('/').pop(),
  });
  expect(rows.length).toBe(100);
  console.log(JSON.stringify(ice.metadata['partition-specs']), JSON.stringify(ice.metadata['sort-orders']));
  await handler.close();
  await server.close();
});

it('compacts per partition', async () => {
  const schema = buildSchema(
    [
      { name: 'id', type: 'long' },
      { name: 'at', type: 'timestamptz' },
      { name: 'v', type: 'string' },
    ],
    ['id'],
  );
  const { handler, store } = await openTestTable({
    name: 'p2',
    schema,
    pool,
    partitionBy: [{ column: 'at', transform: 'day' }],
    sortBy: [{ column: 'v' }],
    options: { compaction: true, compactSmallFileAgeMs: 0 },
  });
  const codec = rowCodec(schema);
  let lsn = 0n;
  for (let round = 0; round < 5; round++) {
    const ops = [];
    for (let i = 0; i < 50; i++) {
      const id = round * 50 + i;
      const values = [BigInt(id % 120), BigInt(1_700_000_000_000_000 + (id % 3) * 86_400_000_000), `v${id}`];
      ops.push({ op: 'upsert' as const, values, key: keyOf(codec, values) });
    }
    handler.apply(++lsn, ops);
    await handler.flush();
  }
  console.log(handler.dataFiles().length);
  handler.compactNow();
  await new Promise((r) => setTimeout(r, 1500));
  handler.compactNow();
  await new Promise((r) => setTimeout(r, 1500));
  handler.compactNow();
  await new Promise((r) => setTimeout(r, 1500));
  const c = await handler.flush();
  console.log(handler.dataFiles());
  const ice = await IcebergTable.load(store, c.metadataKey ?? new URL(c.metadataLocation!).pathname.slice(1));
  const st = await ice.currentState();
  console.log(st.dataFiles.map((d) => [d.recordCount, d.partition, d.sortOrderId]));
  await handler.close();
});
