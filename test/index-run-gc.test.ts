/**
 * Persisted index runs leave the store once no commit a restart may recover from lists them.
 * A commit writes the runs it has not written before and lists all of them; runs merged or
 * compacted away since the last commit are garbage once the catalog pointer names the new
 * commit (before that, a restart recovers from the older commit and reads its runs). And a
 * restart that finds a listed run gone indexes that run's files again from their key columns.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryCatalog } from '../lib/catalog/file-catalog.ts';
import { IcebergTable } from '../lib/iceberg/iceberg-table.ts';
import { asLsn } from '../lib/lsn.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { listAll } from '../lib/store/object-store.ts';
import { readIcebergRows } from './support/iceberg-rows.ts';
import { idValueSchema, idValueUpserts, openTestTable, type TestTable } from './support/table-harness.ts';

const pool = new ParquetWorkerPool(1);
afterAll(() => pool.close());

/** A catalog whose pointer updates fail while `failing` is set (as a throttled DynamoDB would). */
class FlakyPointerCatalog extends MemoryCatalog {
  failing = false;
  override updatePointer(...args: Parameters<MemoryCatalog['updatePointer']>) {
    if (this.failing) return Promise.reject(new Error('pointer update refused'));
    return super.updatePointer(...args);
  }
}

const OPTIONS = { candidateGraceMs: 0, indexMaxRuns: 2, compaction: true, compactMinSmallFiles: 3 };

async function indexObjects(t: TestTable): Promise<string[]> {
  return (await listAll(t.store, '')).map((o) => o.key).filter((k) => k.includes('/index/'));
}

/** The live rows of the commit the pointer names. */
async function rowsOf(t: TestTable) {
  const pointer = await t.catalog.getPointer(t.def.name);
  const ice = await IcebergTable.load(t.store, pointer!.metadataKey!);
  return readIcebergRows(ice, t.store, pool, idValueSchema);
}

/** The index runs the commit the pointer names lists. */
async function pointedIndexKeys(t: TestTable): Promise<string[]> {
  const pointer = await t.catalog.getPointer(t.def.name);
  const ice = await IcebergTable.load(t.store, pointer!.metadataKey!);
  const listed = ice.currentSnapshot()?.summary?.['moonlink.index'];
  return listed ? (JSON.parse(listed) as (string | null)[]).filter((k): k is string => !!k) : [];
}

/** Round r: 40 new keys and 20 of the previous round's overwritten, then a commit and a GC pass. */
async function round(t: TestTable, r: number): Promise<void> {
  const fresh = Array.from({ length: 40 }, (_, i) => r * 40 + i);
  const again = r > 0 ? Array.from({ length: 20 }, (_, i) => (r - 1) * 40 + i) : [];
  t.handler.apply(asLsn(BigInt(r + 1)), idValueUpserts([...fresh, ...again], `r${r}-`));
  await t.handler.commit();
  await t.handler.collectGarbage();
}

async function reopen(t: TestTable): Promise<TestTable> {
  await t.handler.close();
  return openTestTable({
    name: t.def.name,
    schema: idValueSchema,
    pool,
    store: t.store,
    catalog: t.catalog,
    options: OPTIONS,
    reuse: t.def,
  });
}

describe('index runs in the store', () => {
  it('keeps only the runs the last commit lists, however many commits ran', async () => {
    let t = await openTestTable({ name: 'runs', schema: idValueSchema, pool, options: OPTIONS });
    const counts: number[] = [];
    for (let r = 0; r < 12; r++) {
      await round(t, r);
      counts.push((await indexObjects(t)).length);
    }
    const listed = await pointedIndexKeys(t);
    expect(listed.length).toBeGreaterThan(0);
    expect((await indexObjects(t)).sort()).toEqual([...listed].sort());
    // Runs merge (at most 2 kept): the objects stay few, instead of one more per commit.
    expect(Math.max(...counts)).toBeLessThanOrEqual(3);
    // A restart recovers from them: every row, the last version of each.
    t = await reopen(t);
    const rows = await rowsOf(t);
    expect(rows.length).toBe(12 * 40);
    t.handler.apply(asLsn(100n), idValueUpserts([0, 1], 'after-'));
    await t.handler.commit();
    const again = await rowsOf(t);
    expect(again.length).toBe(12 * 40); // upserts found their old rows through the index
    await t.handler.close();
  });

  it('keeps the runs of the commit a lagging pointer names until it catches up', async () => {
    const catalog = new FlakyPointerCatalog();
    let t = await openTestTable({ name: 'lag', schema: idValueSchema, pool, catalog, options: OPTIONS });
    for (let r = 0; r < 4; r++) await round(t, r);
    const pointedBefore = await pointedIndexKeys(t);
    catalog.failing = true;
    for (let r = 4; r < 8; r++) await round(t, r);
    // The pointer still names the commit of round 3: its runs are all still there.
    expect(await pointedIndexKeys(t)).toEqual(pointedBefore);
    const present = new Set(await indexObjects(t));
    for (const k of pointedBefore) expect(present.has(k)).toBe(true);
    catalog.failing = false;
    await round(t, 8);
    await t.handler.collectGarbage();
    expect((await indexObjects(t)).sort()).toEqual((await pointedIndexKeys(t)).sort());
    t = await reopen(t);
    expect((await rowsOf(t)).length).toBe(9 * 40);
    await t.handler.close();
  });

  it('reindexes the files of a listed run that is gone', async () => {
    let t = await openTestTable({ name: 'gone', schema: idValueSchema, pool, options: OPTIONS });
    for (let r = 0; r < 3; r++) await round(t, r);
    for (const k of await pointedIndexKeys(t)) await t.store.delete(k);
    t = await reopen(t);
    // Overwrites still replace their rows: the index was rebuilt from the files' keys.
    t.handler.apply(asLsn(50n), idValueUpserts([0, 41, 85], 'late-'));
    await t.handler.commit();
    const rows = await rowsOf(t);
    expect(rows.length).toBe(3 * 40);
    expect(rows.filter((r) => String(r[1]).startsWith('late-')).length).toBe(3);
    await t.handler.close();
  });
});
