/**
 * Two writers on one table (invariant 4), on the engine directly so the interleaving is fixed:
 * the newer writer's commits stand, and the older one stops — its requests fail rather than
 * hang, and it never takes the newer writer's Iceberg metadata for a leftover of its own.
 */

import os from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { FencedError } from '../lib/catalog/catalog.ts';
import { SUMMARY_LSN } from '../lib/engine/iceberg-committer.ts';
import { engineOptions } from '../lib/engine/options.ts';
import { openTable } from '../lib/engine/table-loader.ts';
import { IcebergTable } from '../lib/iceberg/iceberg-table.ts';
import { asLsn } from '../lib/lsn.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { silentLogger } from '../lib/util/logger.ts';
import { readIcebergRows } from './support/iceberg-rows.ts';
import { idValueSchema, idValueUpserts, openTestTable, type TestTable } from './support/table-harness.ts';

const pool = new ParquetWorkerPool(1);
afterAll(() => pool.close());

const schema = idValueSchema;
const upserts = idValueUpserts;

function secondWriter(t: TestTable) {
  return openTable({
    def: t.def,
    store: t.store,
    catalog: t.catalog,
    pool,
    options: engineOptions({
      snapshotIntervalMs: 0,
      commitIntervalMs: 0,
      gcIntervalMs: 0,
      compaction: false,
    }),
    logger: silentLogger,
    spillDir: os.tmpdir(),
  });
}

describe('fencing', () => {
  it("an older writer's commit fails on the newer one's metadata and leaves it in place", async () => {
    const t = await openTestTable({ name: 'two', schema, pool });
    const a = t.handler;
    a.apply(asLsn(1n), upserts([1, 2], 'a'));
    await a.commit();
    // A's read snapshot after its commit is published before B arrives, so A's next pointer
    // update is the one after its next Iceberg commit.
    await a.snapshotAtLeast(asLsn(1n));
    await new Promise((r) => setTimeout(r, 20));
    // B takes the table over (a new task), catches up from the log and commits.
    const b = await secondWriter(t);
    b.start();
    b.apply(asLsn(2n), upserts([3], 'b'));
    const bCommit = await b.commit();
    const pointerAfterB = await t.catalog.getPointer('two');
    // A has not noticed yet: it applies the same record and tries to commit the same version.
    a.apply(asLsn(2n), upserts([3], 'a-late'));
    await expect(a.commit()).rejects.toBeInstanceOf(FencedError);
    // B's commit is intact: the pointer and the metadata file it names hold B's snapshot.
    const pointer = await t.catalog.getPointer('two');
    expect(pointer?.metadataKey).toBe(pointerAfterB?.metadataKey);
    const iceberg = await IcebergTable.load(t.store, pointer!.metadataKey!);
    expect(iceberg.currentSnapshot()?.summary[SUMMARY_LSN]).toBe(bCommit.lsn.toString());
    const rows = (await readIcebergRows(iceberg, t.store, pool, schema)).map((r) => String(r[1])).sort();
    expect(rows).toEqual(['a1', 'a2', 'b3']);
    // B goes on committing.
    b.apply(asLsn(3n), upserts([4], 'b'));
    expect((await b.commit()).lsn).toBe(3n);
    await a.close();
    await b.close();
  });

  it('requests waiting on a fenced writer fail instead of hanging', async () => {
    const t = await openTestTable({ name: 'waits', schema, pool });
    const a = t.handler;
    a.apply(asLsn(1n), upserts([1], 'a'));
    await a.commit();
    // A flush waiting for an LSN that has not arrived yet, and a read waiting for one.
    const flush = a.commit(asLsn(5n)).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    const read = a.snapshotAtLeast(asLsn(5n)).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    const b = await secondWriter(t);
    b.start();
    await b.commit(); // moves the pointer under B's epoch
    // A's next pointer update (a read snapshot) finds it fenced.
    a.apply(asLsn(2n), upserts([2], 'a'));
    await expect(a.snapshotAtLeast(asLsn(2n))).rejects.toBeInstanceOf(FencedError);
    expect(await flush).toBeInstanceOf(FencedError);
    expect(await read).toBeInstanceOf(FencedError);
    // And anything asked of it afterwards fails at once.
    await expect(a.snapshotAtLeast(asLsn(1n))).rejects.toThrow(/fenced|closed/);
    await a.close();
    await b.close();
  });
});
