/** Unit tests of the engine's small parts: MemSlice, key table, event loop, pending deletes, catalogs, local store. */

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as arrow from 'apache-arrow';
import { afterEach, describe, expect, it } from 'vitest';
import { ConflictError, FencedError, TableExistsError, TableNotReadyError } from '../lib/catalog/catalog.ts';
import { FileCatalog, MemoryCatalog } from '../lib/catalog/file-catalog.ts';
import { tableFromIpc } from '../lib/columns/arrow-convert.ts';
import { recordBatchOf } from '../lib/engine/column-encoder.ts';
import { compactionMemory, planCompaction, runCompaction } from '../lib/engine/compactor.ts';
import { type DataFile, newDataFile, PendingDeletes } from '../lib/engine/data-file.ts';
import { EventLoop } from '../lib/engine/event-loop.ts';
import { FileIndex, type RowHashes } from '../lib/engine/file-index.ts';
import { writeSliceToFile } from '../lib/engine/flusher.ts';
import { KeyTable } from '../lib/engine/key-table.ts';
import { LoadGauge } from '../lib/engine/load-gauge.ts';
import { MemSlice } from '../lib/engine/mem-slice.ts';
import { engineOptions } from '../lib/engine/options.ts';
import { PointerKeeper } from '../lib/engine/pointer-keeper.ts';
import { CREATION_GRACE_MS, openTable } from '../lib/engine/table-loader.ts';
import { asLsn } from '../lib/lsn.ts';
import { encodeParquet } from '../lib/parquet/parquet-codec.mjs';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { hash64 } from '../lib/schema/key-hash.ts';
import { buildSchema, type TableDefinition } from '../lib/schema/table-schema.ts';
import { LocalObjectStore } from '../lib/store/local-object-store.ts';
import { MemoryObjectStore } from '../lib/store/memory-object-store.ts';
import { asFileId, asObjectKey } from '../lib/store/object-keys.ts';
import { NotFoundError, PreconditionFailedError } from '../lib/store/object-store.ts';
import { silentLogger } from '../lib/util/logger.ts';

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'mlparts-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

const schema = buildSchema(
  [
    { name: 'id', type: 'long' },
    { name: 'v', type: 'string' },
  ],
  ['id'],
);
const def: TableDefinition = { name: 't', tableUuid: 'u', schema, formatVersion: 2, createdAt: 'now' };

describe('MemSlice', () => {
  it('appends, looks keys up, deletes, and seals tail segments with their deletes', () => {
    const s = new MemSlice(schema.fields, true);
    const add = (id: number) => {
      const [hi, lo] = hash64(String(id));
      return s.append([BigInt(id), `v${id}`], hi, lo);
    };
    for (let i = 0; i < 10; i++) add(i);
    expect(s.lookupKey('3')).toBe(3);
    expect(s.lookupKey('99')).toBeUndefined();
    const seg = s.seal()!;
    expect(seg).toMatchObject({ start: 0, end: 10, deletedCount: 0 });
    s.delete(3, asLsn(5n));
    s.delete(3, asLsn(6n)); // twice is once
    expect(s.lookupKey('3')).toBeUndefined();
    expect(s.liveCount).toBe(9);
    expect(seg).toMatchObject({ deletedCount: 1, dvDirty: true });
    expect(s.segmentDeletes(seg)).toEqual([3]);
    add(3);
    expect(s.lookupKey('3')).toBe(10);
    expect(s.seal()).toMatchObject({ start: 10, end: 11 });
    expect(s.seal()).toBeUndefined();
    expect([...s.liveRows()]).toEqual([0, 1, 2, 4, 5, 6, 7, 8, 9, 10]);
    const batch = recordBatchOf(s.fields, s.columns, s.liveRows());
    expect(batch.numRows).toBe(10);
    s.frozenAt = asLsn(7n);
    s.delete(0, asLsn(8n));
    expect(s.deletesAfterFreeze).toEqual([{ row: 0, lsn: 8n }]);
  });

  it('key table survives growth and tombstones', () => {
    const t = new KeyTable(4);
    for (let i = 0; i < 5000; i++) {
      const [hi, lo] = hash64(`k${i}`);
      t.set(hi, lo, i);
      if (i % 3 === 0) expect(t.delete(hi, lo)).toBe(true);
    }
    for (let i = 0; i < 5000; i++) {
      const [hi, lo] = hash64(`k${i}`);
      expect(t.get(hi, lo)).toBe(i % 3 === 0 ? -1 : i);
      // Hashes that share a slot's probe sequence but not both words are other keys.
      expect(t.get(hi ^ 1, lo)).toBe(-1);
      expect(t.get(hi, lo ^ 1)).toBe(-1);
    }
    expect(t.size).toBe(5000 - Math.ceil(5000 / 3));
    expect(t.delete(1, 2)).toBe(false);
  });
});

describe('EventLoop', () => {
  it('runs events in order, control before data, and holds data while paused', async () => {
    const seen: string[] = [];
    const loop = new EventLoop<{ type: string }>(
      (e) => {
        seen.push(e.type);
      },
      (e) => e.type.startsWith('d'),
      () => undefined,
    );
    loop.post({ type: 'd1' });
    loop.post({ type: 'c1' });
    loop.post({ type: 'd2' });
    await new Promise((r) => setTimeout(r, 5));
    loop.pauseData();
    expect(seen).toEqual(['c1', 'd1', 'd2']);
    loop.post({ type: 'd3' });
    loop.post({ type: 'c2' });
    await new Promise((r) => setTimeout(r, 5));
    expect(seen).toEqual(['c1', 'd1', 'd2', 'c2']);
    loop.resumeData();
    await new Promise((r) => setTimeout(r, 5));
    expect(seen.at(-1)).toBe('d3');
  });

  it('keeps going after a handler throws', async () => {
    const errors: unknown[] = [];
    const seen: number[] = [];
    const loop = new EventLoop<{ type: string; n: number }>(
      (e) => {
        if (e.n === 1) throw new Error('boom');
        seen.push(e.n);
      },
      () => true,
      (err) => errors.push(err),
    );
    for (let n = 0; n < 3; n++) loop.post({ type: 'x', n });
    await new Promise((r) => setTimeout(r, 5));
    expect(seen).toEqual([0, 2]);
    expect(errors).toHaveLength(1);
  });
});

describe('PendingDeletes', () => {
  it('splits by LSN and follows compacted rows', () => {
    const p = new PendingDeletes();
    p.add(asLsn(1n), 7, 10);
    p.add(asLsn(2n), 7, 11);
    p.add(asLsn(3n), 8, 1);
    const seen: [number, number][] = [];
    p.forEachThrough(asLsn(2n), (f, pos) => seen.push([f, pos]));
    expect(seen).toEqual([
      [7, 10],
      [7, 11],
    ]);
    p.remap((f, pos) => (f === 7 ? (pos === 10 ? undefined : [9, pos - 11]) : [f, pos]));
    expect(p.takeThrough(asLsn(3n))).toEqual(
      new Map([
        [9, [0]],
        [8, [1]],
      ]),
    );
    expect(p.size).toBe(0);
  });
});

describe('compaction planning', () => {
  const file = (fileId: number, sizeBytes: number, rowCount: number, deleted: number) => {
    const f = newDataFile({
      fileId: asFileId(fileId),
      objectKey: asObjectKey(`k${fileId}`),
      rowCount,
      sizeBytes,
      addedLsn: asLsn(1n),
      stats: new Map(),
    });
    for (let i = 0; i < deleted; i++) f.deletes.add(i);
    return f;
  };
  const opts = {
    targetFileBytes: 1000,
    deletedRatio: 0.2,
    minSmallFiles: 3,
    nextFileId: (() => {
      let n = 100;
      return () => asFileId(n++);
    })(),
    objectKeyFor: (id: number) => asObjectKey(`out${id}`),
    startLsn: asLsn(5n),
  };
  it('merges enough small files, rewrites files with many deletes, and leaves the rest', () => {
    expect(planCompaction([file(1, 100, 10, 0), file(2, 100, 10, 0)], opts)).toBeUndefined();
    const plan = planCompaction(
      [file(1, 100, 10, 0), file(2, 100, 10, 0), file(3, 100, 10, 0), file(4, 900, 90, 0)],
      opts,
    )!;
    expect(plan.inputs.map((i) => i.fileId)).toEqual([1, 2, 3]);
    expect(plan.outputs).toHaveLength(1);
    const deletes = planCompaction([file(5, 900, 100, 30)], opts)!;
    expect(deletes.inputs.map((i) => i.fileId)).toEqual([5]);
    expect(deletes.inputs[0].deletesAtStart.size).toBe(30);
    expect(planCompaction([file(6, 900, 100, 100)], opts)!.outputs).toHaveLength(0);
  });

  it('lets small files wait while writes keep the loop busy, up to four times as many, but never files with deletes', () => {
    const smalls = (n: number) => Array.from({ length: n }, (_, i) => file(10 + i, 100, 10, 0));
    expect(planCompaction(smalls(3), opts)).toBeDefined();
    let deferred = 0;
    const onDeferred = () => deferred++;
    expect(planCompaction(smalls(11), { ...opts, busy: true, onDeferred })).toBeUndefined();
    expect(deferred).toBe(1);
    // Fewer small files than the usual minimum: nothing waits, nothing to merge.
    expect(planCompaction(smalls(2), { ...opts, busy: true, onDeferred })).toBeUndefined();
    expect(deferred).toBe(1);
    expect(planCompaction(smalls(12), { ...opts, busy: true })!.inputs.length).toBeGreaterThan(0);
    expect(
      planCompaction([...smalls(2), file(30, 900, 100, 30)], { ...opts, busy: true })!.inputs,
    ).toHaveLength(3);
  });

  it('gauges how busy the event loop was since the last reading', async () => {
    const gauge = new LoadGauge();
    const until = performance.now() + 150;
    while (performance.now() < until) {
      // busy
    }
    expect(gauge.read()).toBeGreaterThan(0.6);
    await new Promise((r) => setTimeout(r, 150));
    expect(gauge.read()).toBeLessThan(0.5);
  });
});

/** A plan taking every file in one pass (a target far beyond them), output ids from 10. */
function planAllAtOnce(files: DataFile[]) {
  let next = 10;
  return planCompaction(files, {
    targetFileBytes: 1 << 30,
    deletedRatio: 0.1,
    minSmallFiles: 2,
    nextFileId: () => asFileId(next++),
    objectKeyFor: (id) => asObjectKey(`data/${id}.parquet`),
    startLsn: asLsn(2n),
  })!;
}

describe('compaction run', () => {
  it("takes the outputs' key hashes from the index, or hashes the keys when the index lacks rows", async () => {
    const store = new MemoryObjectStore();
    const pool = new ParquetWorkerPool(1);
    const index = new FileIndex({ memoryBudgetBytes: 1 << 20, spillDir: os.tmpdir(), maxRuns: 8 });
    const files: DataFile[] = [];
    for (const fileId of [1, 2]) {
      const slice = new MemSlice(schema.fields, true);
      for (let i = 0; i < 300; i++) {
        const key = String(fileId * 1000 + i);
        const [hi, lo] = hash64(key);
        slice.append([BigInt(key), `v${key}`], hi, lo);
      }
      const rows = Uint32Array.from({ length: 300 }, (_, i) => i);
      const [r] = (
        await writeSliceToFile(
          {
            slice,
            rows,
            fileId: asFileId(fileId),
            objectKey: asObjectKey(`data/${fileId}.parquet`),
            compression: 'none',
          },
          store,
          pool,
        )
      ).files;
      index.add(r.run!);
      const f = newDataFile({
        fileId: asFileId(fileId),
        objectKey: r.objectKey,
        rowCount: 300,
        sizeBytes: r.sizeBytes,
        addedLsn: asLsn(1n),
        stats: r.stats,
      });
      // File 1 has deletes (its rows are taken one by one), file 2 has none (its columns are reused).
      if (fileId === 1) for (let p = 0; p < 300; p += 7) f.deletes.add(p);
      files.push(f);
    }
    const expectedIds = [
      ...Array.from({ length: 300 }, (_, i) => i)
        .filter((i) => i % 7 !== 0)
        .map((i) => String(1000 + i)),
      ...Array.from({ length: 300 }, (_, i) => String(2000 + i)),
    ];
    // Both files into one pass (output ids from 10).
    const planBoth = () => planAllAtOnce(files);
    const lookups = async (rowHashes: Map<number, RowHashes> | undefined) => {
      const plan = planBoth();
      const result = await runCompaction(plan, {
        store,
        pool,
        fields: schema.fields,
        keyColumns: [0],
        compression: 'none',
        rowHashes,
      });
      expect(result.outputs).toHaveLength(1);
      const out = tableFromIpc(await pool.decode(await store.get(result.outputs[0].objectKey)));
      expect([...out.getChildAt(0)!].map(String)).toEqual(expectedIds);
      expect([...out.getChildAt(1)!]).toEqual(expectedIds.map((id) => `v${id}`));
      expect(out.schema.fields[0].metadata.get('PARQUET:field_id')).toBe('1');
      const found: string[] = [];
      for (const fileId of [1, 2])
        for (let i = 0; i < 300; i++) {
          const key = String(fileId * 1000 + i);
          const [hi, lo] = hash64(key);
          result.outputs[0].run!.find(hi, lo, (_f, pos) => {
            found.push(`${key}@${pos}`);
            return true;
          });
        }
      return found;
    };
    // A compaction takes its hashes over (they are handed to its worker): fresh ones each time.
    const indexHashes = () =>
      index.rowHashes(
        new Map([
          [1, 300],
          [2, 300],
        ]),
      );
    const hashes = await indexHashes();
    expect([...hashes.get(2)!.has].every((h) => h === 1)).toBe(true);
    const fromIndex = await lookups(hashes);
    expect(fromIndex).toHaveLength(600 - 43);
    expect(fromIndex[0]).toBe('1001@0');
    expect(await lookups(undefined)).toEqual(fromIndex);
    // An index that lacks some rows: those batches are hashed from the data.
    const lacking = await indexHashes();
    lacking.get(1)!.has.fill(0, 100, 110);
    lacking.get(1)!.his.fill(0);
    expect(await lookups(lacking)).toEqual(fromIndex);

    // The same plan in the worker and in the calling thread (a pool of size 0, where this ran
    // before it moved to the worker): the same bytes, rows, bounds, index run and row mapping.
    const inline = new ParquetWorkerPool(0);
    const outcome = async (p: ParquetWorkerPool) => {
      const whole = planBoth();
      // Three outputs of 200 rows, cut mid-batch.
      const plan = {
        ...whole,
        rowsPerOutput: 200,
        outputs: [20, 21, 22].map((fileId) => ({
          fileId: asFileId(fileId),
          objectKey: asObjectKey(`data/${fileId}.parquet`),
        })),
      };
      const r = await runCompaction(plan, {
        store,
        pool: p,
        fields: schema.fields,
        keyColumns: [0],
        compression: 'none',
      });
      return {
        outputs: await Promise.all(
          r.outputs.map(async (o) => ({
            rowCount: o.rowCount,
            bytes: await store.get(o.objectKey),
            stats: o.stats,
            run: o.run!.serialize(),
          })),
        ),
        mapping: [...r.mapping],
      };
    };
    const inWorker = await outcome(pool);
    const inThread = await outcome(inline);
    expect(inWorker.outputs.length).toBeGreaterThan(1);
    expect(inWorker).toEqual(inThread);
    // Each output's bounds are its rows' own.
    let at = 0;
    for (const o of inWorker.outputs) {
      const ids = expectedIds.slice(at, at + o.rowCount).map(BigInt);
      at += o.rowCount;
      const st = o.stats.get(1)!;
      const sorted = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      expect([st.lower, st.upper]).toEqual([sorted[0], sorted[sorted.length - 1]]);
      expect(st.valueCount).toBe(o.rowCount);
    }
    expect(at).toBe(expectedIds.length);
    await pool.close();
    await inline.close();
    index.clear();
  });
});

describe('compaction in bounded memory', () => {
  it('reads inputs a row group at a time, skips row groups wholly deleted, and streams outputs', async () => {
    const store = new MemoryObjectStore();
    const pool = new ParquetWorkerPool(1);
    // Three files of 5,000 rows in row groups of 1,000.
    const files: DataFile[] = [];
    const expected: string[] = [];
    for (const fileId of [1, 2, 3]) {
      const ids = Array.from({ length: 5000 }, (_, i) => String(fileId * 100_000 + i));
      const table = new arrow.Table({
        id: arrow.vectorFromArray(ids.map(BigInt), new arrow.Int64()),
        v: arrow.vectorFromArray(
          ids.map((id) => `v${id}`),
          new arrow.Utf8(),
        ),
      });
      const bytes = encodeParquet(arrow.tableToIPC(table, 'stream'), {
        rowGroupSize: 1000,
        compression: 'none',
      });
      const key = asObjectKey(`data/${fileId}.parquet`);
      await store.put(key, bytes);
      const f = newDataFile({
        fileId: asFileId(fileId),
        objectKey: key,
        rowCount: 5000,
        sizeBytes: bytes.length,
        addedLsn: asLsn(1n),
        stats: new Map(),
      });
      // File 1: its third row group deleted whole, and every 10th row elsewhere.
      if (fileId === 1)
        for (let p = 0; p < 5000; p++) if ((p >= 2000 && p < 3000) || p % 10 === 3) f.deletes.add(p);
      ids.forEach((id, p) => {
        if (!f.deletes.has(p)) expected.push(id);
      });
      files.push(f);
    }
    const plan = planAllAtOnce(files);
    expect(plan.inputs).toHaveLength(3);
    // Outputs of 4,000 rows: cut across row groups and across inputs.
    const outputs = Math.ceil(expected.length / 4000);
    const r = await runCompaction(
      {
        ...plan,
        rowsPerOutput: 4000,
        outputs: Array.from({ length: outputs }, (_, k) => ({
          fileId: asFileId(20 + k),
          objectKey: asObjectKey(`data/${20 + k}.parquet`),
        })),
      },
      { store, pool, fields: schema.fields, keyColumns: [0], compression: 'zstd' },
    );
    expect(r.rowGroupsRead).toBe(14);
    const got: string[] = [];
    for (const o of r.outputs) {
      const t = tableFromIpc(await pool.decode(await store.get(o.objectKey)));
      expect(t.numRows).toBe(o.rowCount);
      got.push(...[...t.getChildAt(0)!].map(String));
      expect([...t.getChildAt(1)!].slice(0, 3)).toEqual(
        [...t.getChildAt(0)!].slice(0, 3).map((id) => `v${id}`),
      );
      expect(o.stats.get(1)!.valueCount).toBe(o.rowCount);
    }
    expect(got).toEqual(expected);
    expect(r.outputs.map((o) => o.rowCount)).toEqual(
      Array.from({ length: outputs }, (_, k) => Math.min(4000, expected.length - 4000 * k)),
    );
    // Every input row's place in the outputs (from the deletes, no table per row) is where the
    // worker put it; deleted rows have none.
    const outIds = r.outputs.map((_, k) => got.slice(4000 * k, 4000 * (k + 1)));
    let placed = 0;
    for (const f of files)
      for (let p = 0; p < 5000; p++) {
        const at = r.mapping.get(f.fileId)!.place(p);
        if (f.deletes.has(p)) expect(at).toBeUndefined();
        else {
          expect(outIds[at![0]][at![1]]).toBe(String(f.fileId * 100_000 + p));
          placed++;
        }
      }
    expect(placed).toBe(expected.length);
    await pool.close();
  });

  it('plans no bigger a pass than the memory the budget leaves', () => {
    const f = (fileId: number) =>
      newDataFile({
        fileId: asFileId(fileId),
        objectKey: asObjectKey(`k${fileId}`),
        rowCount: 100_000,
        sizeBytes: 1_000_000,
        addedLsn: asLsn(1n),
        stats: new Map(),
      });
    const opts = {
      targetFileBytes: 64 << 20,
      deletedRatio: 0.1,
      minSmallFiles: 2,
      nextFileId: () => asFileId(99),
      objectKeyFor: (id: number) => asObjectKey(`data/${id}`),
      startLsn: asLsn(1n),
      rowBytes: 50,
    };
    const files = [1, 2, 3, 4, 5].map(f);
    expect(planCompaction(files, opts)!.inputs).toHaveLength(5);
    const three = compactionMemory(files.slice(0, 3), 50);
    expect(three).toBe(96 * 2 ** 20 + 4 * 122_880 * 50 + 3 * (4_000_000 + 5_600_000));
    expect(planCompaction(files, { ...opts, maxMemoryBytes: three })!.inputs).toHaveLength(3);
    // Not even two fit: the pass waits.
    expect(
      planCompaction(files, { ...opts, maxMemoryBytes: compactionMemory(files.slice(0, 1), 50) }),
    ).toBeUndefined();
  });
});

describe('catalogs', () => {
  for (const [name, make] of [
    ['memory', async () => new MemoryCatalog()],
    ['file', async () => FileCatalog.open(path.join(await tmp(), 'catalog.json'))],
  ] as const) {
    it(`${name}: tables, epochs, compare-and-swap and leases`, async () => {
      const c = await make();
      await c.createTable(def);
      await expect(c.createTable(def)).rejects.toBeInstanceOf(TableExistsError);
      expect((await c.listTables()).map((d) => d.name)).toEqual(['t']);
      const e1 = await c.acquireEpoch('t');
      const p1 = await c.updatePointer('t', 0, e1, { lsn: asLsn(1n), committedLsn: asLsn(0n) });
      expect(p1.version).toBe(1);
      await expect(
        c.updatePointer('t', 0, e1, { lsn: asLsn(2n), committedLsn: asLsn(0n) }),
      ).rejects.toBeInstanceOf(ConflictError);
      const e2 = await c.acquireEpoch('t');
      await expect(
        c.updatePointer('t', 1, e1, { lsn: asLsn(2n), committedLsn: asLsn(0n) }),
      ).rejects.toBeInstanceOf(FencedError);
      expect((await c.updatePointer('t', 1, e2, { lsn: asLsn(3n), committedLsn: asLsn(0n) })).lsn).toBe(
        asLsn(3n),
      );
      await c.putLease({ leaseId: 't.abc', table: 't', snapshotKey: 's', expiresAt: Date.now() + 1000 });
      expect(await c.getLease('t.abc')).toMatchObject({ snapshotKey: 's' });
      expect(await c.listLeases('t')).toHaveLength(1);
      expect(await c.deleteLease('t.abc')).toBe(true);
      expect(await c.deleteLease('t.abc')).toBe(false);
      await c.dropTable('t');
      expect(await c.getTable('t')).toBeUndefined();
      await c.close();
    });
  }

  it('file catalog persists across reopen', async () => {
    const file = path.join(await tmp(), 'catalog.json');
    const c = await FileCatalog.open(file);
    await c.createTable(def);
    await c.acquireEpoch('t');
    await c.close();
    const again = await FileCatalog.open(file);
    expect(await again.getTable('t')).toMatchObject({ name: 't' });
    expect(await again.acquireEpoch('t')).toBe(2);
  });

  it('a pointer update whose response was lost is recognised as our own', async () => {
    const inner = new MemoryCatalog();
    await inner.createTable(def);
    const epoch = await inner.acquireEpoch('t');
    let lose = true;
    const lossy = Object.assign(Object.create(inner) as MemoryCatalog, {
      updatePointer: async (...args: Parameters<MemoryCatalog['updatePointer']>) => {
        const r = await inner.updatePointer(...args);
        if (lose) {
          lose = false;
          throw new Error('socket hang up');
        }
        return r;
      },
    });
    const keeper = new PointerKeeper(lossy, 't', epoch, undefined);
    const p = await keeper.update((u) => ({ ...u, lsn: asLsn(5n) }));
    expect(p).toMatchObject({ version: 1, lsn: asLsn(5n) });
    expect((await keeper.update((u) => ({ ...u, lsn: asLsn(6n) }))).version).toBe(2);
    expect(keeper.fencedBy).toBeUndefined();
  });

  it('a writer leaves a table being created alone, and finishes a creation that crashed half-way', async () => {
    const catalog = new MemoryCatalog();
    const store = new MemoryObjectStore();
    const pool = new ParquetWorkerPool(1);
    try {
      const open = (d: TableDefinition) =>
        openTable({
          def: d,
          store,
          catalog,
          pool,
          options: engineOptions({ snapshotIntervalMs: 0, commitIntervalMs: 0, gcIntervalMs: 0 }),
          logger: silentLogger,
          spillDir: os.tmpdir(),
        });
      // The creator registered the table but has not initialized its pointer yet.
      const fresh = { ...def, name: 'fresh', createdAt: new Date().toISOString() };
      await catalog.createTable(fresh);
      await expect(open(fresh)).rejects.toBeInstanceOf(TableNotReadyError);
      expect(await catalog.getPointer('fresh')).toBeUndefined(); // no epoch taken: the creator is not fenced
      // A creation older than the grace period is finished by the writer.
      const stale = {
        ...def,
        name: 'stale',
        createdAt: new Date(Date.now() - CREATION_GRACE_MS - 1000).toISOString(),
      };
      await catalog.createTable(stale);
      const handler = await open(stale);
      expect((await catalog.getPointer('stale'))?.metadataKey).toMatch(
        /^tables\/stale\/metadata\/v1\.metadata\.json$/,
      );
      await handler.close();
    } finally {
      await pool.close();
    }
  });
});

describe('LocalObjectStore', () => {
  it('puts atomically, reads ranges, lists in order, refuses create-only overwrites and unsafe keys', async () => {
    const root = await tmp();
    const s = new LocalObjectStore(root);
    await s.put('tables/a/x.bin', new Uint8Array([1, 2, 3, 4]));
    await s.put('tables/a/b/y.bin', new Uint8Array([5]));
    await s.put('tables/b/z.bin', new Uint8Array([6]));
    expect(await s.getRange('tables/a/x.bin', 1, 2)).toEqual(new Uint8Array([2, 3]));
    expect((await s.head('tables/a/x.bin'))?.size).toBe(4);
    const keys: string[] = [];
    for await (const o of s.list('tables/a/')) keys.push(o.key);
    expect(keys).toEqual(['tables/a/b/y.bin', 'tables/a/x.bin']);
    await expect(s.put('tables/a/x.bin', new Uint8Array([9]), { ifNoneMatch: true })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    await expect(s.get('tables/nope')).rejects.toBeInstanceOf(NotFoundError);
    for (const bad of ['../x', '/abs', 'a/../b', 'a//b', 'a b'])
      await expect(s.put(bad, new Uint8Array())).rejects.toThrow(/unsafe object key/);
    expect(s.keyFromUri(s.uri('tables/a/x.bin'))).toBe('tables/a/x.bin');
    await s.deleteMany(['tables/a/x.bin', 'tables/a/b/y.bin']);
    await expect(fs.readdir(path.join(root, 'tables', 'a'))).rejects.toThrow();
  });
});
