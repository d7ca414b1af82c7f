/**
 * The orphan sweep and files still being written (invariant 3). A data file's upload can finish
 * before the table's loop learns of it; in that window nothing refers to the object yet, and a
 * sweep with no grace period must still leave it alone. The store here holds the upload's
 * answer until the sweep has run, for a flush and for a compaction.
 */

import { afterAll, describe, expect, it } from 'vitest';
import { IcebergTable } from '../lib/iceberg/iceberg-table.ts';
import { asLsn } from '../lib/lsn.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { MemoryObjectStore } from '../lib/store/memory-object-store.ts';
import type { PutOptions } from '../lib/store/object-store.ts';
import { readIcebergRows } from './support/iceberg-rows.ts';
import { idValueSchema, idValueUpserts, openTestTable } from './support/table-harness.ts';

const pool = new ParquetWorkerPool(1);
afterAll(() => pool.close());

const schema = idValueSchema;

/** Stores data files at once but answers their uploads only when released. */
class HeldStore extends MemoryObjectStore {
  private release: (() => void) | undefined;
  private held: Promise<void> | undefined;
  readonly heldKeys: string[] = [];
  private onHeld: (() => void) | undefined;

  hold(): Promise<void> {
    this.held = new Promise((r) => {
      this.release = r;
    });
    return new Promise((r) => {
      this.onHeld = r;
    });
  }

  letGo(): void {
    this.held = undefined;
    this.release?.();
  }

  override async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    await super.put(key, body, options);
    if (this.held && key.includes('/data/')) {
      this.heldKeys.push(key);
      this.onHeld?.();
      await this.held;
    }
  }
}

/** Upserts of ids from … from + n - 1. */
function upserts(from: number, n: number) {
  return idValueUpserts(
    Array.from({ length: n }, (_, i) => from + i),
    'v',
  );
}

describe('orphan sweep', () => {
  it('never removes a data file whose upload the table has not seen finish', async () => {
    const store = new HeldStore();
    const t = await openTestTable({
      name: 'held',
      schema,
      pool,
      store,
      options: { orphanGraceMs: 0, candidateGraceMs: 0, compactMinSmallFiles: 2, targetFileBytes: 1 << 20 },
    });
    try {
      // A flush whose upload is done in the store but not yet answered.
      t.handler.apply(asLsn(1n), upserts(0, 50));
      let reached = store.hold();
      const flushed = t.handler.commit();
      await reached;
      await new Promise((r) => setTimeout(r, 5)); // older than the sweep's cutoff
      await t.handler.collectGarbage({ orphans: true });
      expect(await store.head(store.heldKeys[0])).toBeDefined();
      store.letGo();
      await flushed;

      // A second file, then a compaction of both whose output is held the same way.
      t.handler.apply(asLsn(2n), upserts(50, 50));
      await t.handler.commit();
      reached = store.hold();
      t.handler.compactNow();
      await reached;
      await new Promise((r) => setTimeout(r, 5));
      await t.handler.collectGarbage({ orphans: true });
      expect(await store.head(store.heldKeys[1])).toBeDefined();
      store.letGo();
      const commit = await t.handler.commit();
      expect(commit.lsn).toBe(2n);

      const pointer = await t.catalog.getPointer('held');
      const iceberg = await IcebergTable.load(store, pointer!.metadataKey!);
      const state = await iceberg.currentState();
      expect(state.dataFiles.map((f) => f.key)).toEqual([store.heldKeys[1]]);
      expect((await readIcebergRows(iceberg, store, pool, schema)).length).toBe(100);
    } finally {
      await t.handler.close();
    }
  });
});
