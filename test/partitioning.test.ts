/**
 * Partitioned, sorted tables in the engine, against a reference model: random upserts and
 * deletes whose keys move between partitions (their day and bucket change), small slices so
 * rows cross into files all the time, compactions, and a partition evolution half way (a new
 * spec; compaction then rewrites every file into it). Checked after each phase:
 * - our snapshot reads, and an outside reader (icebird over loopback HTTP), equal the model;
 * - every data file lies in one partition: each of its rows' partition tuple, computed from the
 *   row with the spec's transforms, is the tuple the manifest records, and the rows are in the
 *   table's sort order;
 * - manifests hold one spec each and the manifest list carries partition summaries that cover
 *   their files; every delete file (v2 position deletes, v3 deletion vectors) carries the
 *   partition of the data file it applies to.
 */

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { icebergRead } from 'icebird';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readData, tableFromIpc } from '../lib/columns/arrow-convert.ts';
import { engineOptions } from '../lib/engine/options.ts';
import { openTable } from '../lib/engine/table-loader.ts';
import { CONTENT } from '../lib/iceberg/avro-schemas.ts';
import { IcebergTable } from '../lib/iceberg/iceberg-table.ts';
import { decodeManifest, decodeManifestList } from '../lib/iceberg/manifest-io.ts';
import { partitionFromAvro } from '../lib/iceberg/partition-avro.ts';
import { deserializeValue } from '../lib/iceberg/stats.ts';
import { manifestSpecOf } from '../lib/iceberg/table-layout.ts';
import { asLsn, lsnAfter } from '../lib/lsn.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { SnapshotReader } from '../lib/read/snapshot-reader.ts';
import { parsePartitionBy, partitioner, tupleKey } from '../lib/schema/partition-spec.ts';
import { rowComparator } from '../lib/schema/sort-order.ts';
import { buildSchema, type FormatVersion } from '../lib/schema/table-schema.ts';
import { compareScalars, fieldEncoder, type Value } from '../lib/schema/values.ts';
import { LocalObjectStore } from '../lib/store/local-object-store.ts';
import { type DecodedOp, keyOf, rowCodec } from '../lib/txn/transaction.ts';
import { silentLogger } from '../lib/util/logger.ts';
import { rng } from './support/model.ts';
import { type StaticServer, serveFolder } from './support/static-server.ts';
import { openTestTable } from './support/table-harness.ts';

const pool = new ParquetWorkerPool(2);
let dir: string;
let server: StaticServer;
let store: LocalObjectStore;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlpart-'));
  server = await serveFolder(dir);
  store = new LocalObjectStore(dir, { locationBase: `${server.url}/` });
});
afterAll(async () => {
  await server.close();
  await pool.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const schema = buildSchema(
  [
    { name: 'id', type: 'long' },
    { name: 'placed_at', type: 'timestamptz' },
    { name: 'region', type: 'string' },
    { name: 'qty', type: 'int' },
  ],
  ['id'],
);
const codec = rowCodec(schema);
const enc = schema.fields.map(fieldEncoder);
const DAY = 86_400_000_000n;
const BASE = 1_714_521_600_000_000n; // 2024-05-01T00:00:00Z
const REGIONS = ['eu', 'us', 'ap', 'sa', null];

const text = (row: Value[]): string =>
  JSON.stringify(
    Object.fromEntries(
      schema.fields.map((f, i) => [f.name, row[i] === null ? null : JSON.parse(enc[i](row[i]))]),
    ),
  );

function randomOps(r: () => number, count: number): DecodedOp[] {
  const ops: DecodedOp[] = [];
  for (let i = 0; i < count; i++) {
    const id = BigInt(Math.floor(r() * 150));
    if (r() < 0.2) {
      const values = [id, null, null, null];
      ops.push({ op: 'delete', values, key: keyOf(codec, values) });
      continue;
    }
    // A key moves between days and regions as it is upserted again.
    const at = BASE + BigInt(Math.floor(r() * 5)) * DAY + BigInt(Math.floor(r() * 86_400)) * 1_000_000n;
    const values = [id, at, REGIONS[Math.floor(r() * REGIONS.length)], Math.floor(r() * 1000)];
    ops.push({ op: 'upsert', values, key: keyOf(codec, values) });
  }
  return ops;
}

async function checkFiles(
  iceberg: IcebergTable,
  formatVersion: FormatVersion,
): Promise<{ files: number; specs: Set<number>; deleteFiles: number }> {
  const state = await iceberg.currentState();
  const order = iceberg.sortOrder();
  const specs = iceberg.specs();
  const usedSpecs = new Set<number>();
  for (const f of state.dataFiles) {
    const spec = specs.get(f.specId ?? 0)!;
    usedSpecs.add(spec.specId);
    const table = tableFromIpc(await pool.decode(await store.get(f.key)));
    const cols = schema.fields.map((field, c) =>
      table.batches.flatMap((b) => readData(field.type, b.data.children[c])),
    );
    const p = partitioner(spec, schema.fields);
    const idx = p.sources.map((id) => schema.fields.findIndex((x) => x.id === id));
    for (let i = 0; i < table.numRows; i++) {
      const tuple = p.apply(idx.map((c) => cols[c][i]));
      expect(tupleKey(tuple), `${f.key} row ${i}`).toBe(tupleKey(f.partition ?? []));
    }
    // Sorted by the table's order (region asc nulls first, then qty desc).
    expect(f.sortOrderId).toBe(order.orderId);
    const sortCols = order.fields.map((sf) => cols[schema.fields.findIndex((x) => x.id === sf.sourceId)]);
    const cmp = rowComparator(order, sortCols);
    for (let i = 1; i < table.numRows; i++)
      expect(cmp(i - 1, i), `${f.key} rows ${i - 1},${i}`).toBeLessThanOrEqual(0);
  }
  // Manifests: one spec each, with summaries covering their entries; delete files carry the
  // partition of the data file they apply to.
  const snap = iceberg.currentSnapshot()!;
  const list = decodeManifestList(await store.get(new URL(snap['manifest-list']).pathname.slice(1)), 'list');
  const partitionOfData = new Map<string, string>();
  const deleteEntries: { ref: string; partition: string }[] = [];
  for (const m of list) {
    const mspec = manifestSpecOf(iceberg.metadata, m.partition_spec_id, schema.fields);
    if (mspec.partType.length > 0)
      expect(m.partitions, `${m.manifest_path} summaries`).toHaveLength(mspec.partType.length);
    else expect(m.partitions).toBeNull();
    const entries = decodeManifest(
      await store.get(new URL(m.manifest_path).pathname.slice(1)),
      m,
      'manifest',
    );
    for (const e of entries.filter((x) => x.status !== 2)) {
      // One spec per manifest: every entry's partition has exactly the spec's fields.
      expect(Object.keys(e.data_file.partition).sort()).toEqual(mspec.partType.map((f) => f.name).sort());
      const tuple = partitionFromAvro(mspec.partType, e.data_file.partition);
      if (e.data_file.content === CONTENT.DATA) partitionOfData.set(e.data_file.file_path, tupleKey(tuple));
      else deleteEntries.push({ ref: e.data_file.referenced_data_file!, partition: tupleKey(tuple) });
      // The manifest list's summaries bound every tuple of the manifest.
      mspec.partType.forEach((pf, i) => {
        const sum = m.partitions![i];
        const v = tuple[i];
        if (v === null || v === undefined) {
          expect(sum.contains_null).toBe(true);
          return;
        }
        expect(compareScalars(v, deserializeValue(pf.type, sum.lower_bound!))).toBeGreaterThanOrEqual(0);
        expect(compareScalars(v, deserializeValue(pf.type, sum.upper_bound!))).toBeLessThanOrEqual(0);
      });
    }
  }
  for (const d of deleteEntries)
    expect(d.partition, `delete file for ${d.ref}`).toBe(partitionOfData.get(d.ref));
  void formatVersion;
  return { files: state.dataFiles.length, specs: usedSpecs, deleteFiles: deleteEntries.length };
}

async function outsideRows(metadataLocation: string, tableRoot: string): Promise<string[]> {
  const rows = await icebergRead({
    tableUrl: `${server.url}/${tableRoot}`,
    metadataFileName: metadataLocation.split('/').pop(),
  });
  return rows
    .map((row) =>
      JSON.stringify({
        id: Number(row.id),
        placed_at: row.placed_at === null ? null : new Date(row.placed_at as Date).toISOString(), // icebird gives a Date (ms)
        region: row.region ?? null,
        qty: row.qty ?? null,
      }),
    )
    .sort();
}

for (const formatVersion of [2, 3] as FormatVersion[]) {
  describe(`partitioned tables, format v${formatVersion}`, () => {
    it('random upserts and deletes across partitions, compaction and a partition evolution read as the model', async () => {
      const name = `parts_v${formatVersion}`;
      const { handler, def, catalog } = await openTestTable({
        name,
        schema,
        pool,
        store,
        formatVersion,
        partitionBy: [
          { column: 'placed_at', transform: 'day' },
          { column: 'id', transform: 'bucket[4]' },
        ],
        sortBy: [{ column: 'region' }, { column: 'qty', direction: 'desc' }],
        options: { memSliceMaxRows: 30, compaction: true, compactSmallFileAgeMs: 0, compactMinSmallFiles: 2 },
      });
      const model = new Map<string, Value[]>();
      const r = rng(formatVersion * 17);
      const reader = new SnapshotReader(store, () => pool);
      let lsn = asLsn(0n);
      const modelTexts = () => [...model.values()].map(text).sort();
      const check = async () => {
        const snap = await handler.snapshotAtLeast(lsn);
        const manifest = await reader.manifest(snap.objectKey);
        const rows = (await reader.readAll(manifest, schema.fields)).map(text).sort();
        expect(rows).toEqual(modelTexts());
        // Snapshot files carry their partition by field name.
        for (const f of manifest.files.filter((x) => x.kind === 'data'))
          expect(Object.keys(f.partition ?? {}).length).toBeGreaterThan(0);
        const commit = await handler.commit();
        const iceberg = await IcebergTable.load(store, new URL(commit.metadataLocation!).pathname.slice(1));
        // icebird reads v2 position deletes, not v3 deletion vectors: the outside reader checks v2.
        if (formatVersion === 2)
          expect(await outsideRows(commit.metadataLocation!, iceberg.tableRoot)).toEqual(
            modelTexts()
              .map((t) => {
                const o = JSON.parse(t);
                return JSON.stringify({
                  ...o,
                  id: Number(o.id),
                  placed_at: o.placed_at === null ? null : new Date(o.placed_at).toISOString(),
                });
              })
              .sort(),
          );
        return checkFiles(iceberg, formatVersion);
      };
      const write = (n: number) => {
        for (let t = 0; t < n; t++) {
          const ops = randomOps(r, 12);
          lsn = lsnAfter(lsn);
          handler.apply(lsn, ops);
          for (const op of ops) {
            if (op.op === 'delete') model.delete(op.key!);
            else model.set(op.key!, op.values);
          }
        }
      };
      let deleteFiles = 0;
      for (let round = 0; round < 4; round++) {
        write(10);
        await handler.commit();
        handler.compactNow();
        write(5);
        deleteFiles += (await check()).deleteFiles;
      }
      // Deletes of flushed rows reached Iceberg as delete files (checked for their partition).
      expect(deleteFiles).toBeGreaterThan(0);
      // Files per partition stay few: compaction merges each partition's small files.
      const before = await check();
      expect(before.specs).toEqual(new Set([0]));

      // Partition evolution: by region now. New files use spec 1; compaction rewrites the rest.
      const { spec, lastPartitionId } = parsePartitionBy([{ column: 'region' }], schema.fields, {
        specId: 1,
        lastPartitionId: handler.lastPartitionId,
        previous: [...handler.partitionSpecs().values()],
      });
      await handler.setPartitioning(spec, lastPartitionId);
      write(10);
      const mixed = await check();
      expect(mixed.specs.has(1)).toBe(true);
      for (let i = 0; i < 100; i++) {
        handler.compactNow();
        await new Promise((res) => setTimeout(res, 200));
        const files = handler.dataFiles();
        const c = await handler.commit();
        const ice = await IcebergTable.load(store, new URL(c.metadataLocation!).pathname.slice(1));
        const st = await ice.currentState();
        if (files.length <= REGIONS.length && st.dataFiles.every((f) => f.specId === 1)) break;
      }
      const after = await check();
      expect(after.specs).toEqual(new Set([1]));
      // One file per region (five values, null among them) once compaction is done.
      expect(after.files).toBeLessThanOrEqual(REGIONS.length);
      await handler.close();
      // Reopened from the store: the specs, files and partitions come back from Iceberg.
      const reopened = await openTable({
        def,
        store,
        catalog,
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
      expect(reopened.fileLayout.spec.specId).toBe(1);
      const snap = await reopened.snapshotAtLeast(lsn);
      const manifest = await reader.manifest(snap.objectKey);
      expect((await reader.readAll(manifest, schema.fields)).map(text).sort()).toEqual(modelTexts());
      expect(manifest.files.every((f) => f.specId === 1 && f.partition && 'region' in f.partition)).toBe(
        true,
      );
      await reopened.close();
    }, 120_000);
  });
}

describe('a TRUNCATE while a compaction runs', () => {
  for (const partitioned of [false, true]) {
    it(`leaves the truncated rows out of the compaction's outputs (${partitioned ? 'partitioned' : 'unpartitioned'})`, async () => {
      const { handler } = await openTestTable({
        name: `trunc_${partitioned}`,
        schema,
        pool,
        store,
        ...(partitioned ? { partitionBy: [{ column: 'id', transform: 'bucket[2]' }] } : {}),
        options: { compaction: true, compactMinSmallFiles: 2, compactSmallFileAgeMs: 0 },
      });
      const r = rng(5);
      let lsn = asLsn(0n);
      for (let k = 0; k < 4; k++) {
        lsn = lsnAfter(lsn);
        handler.apply(
          lsn,
          randomOps(r, 30).filter((o) => o.op === 'upsert'),
        );
        await handler.commit();
      }
      expect(handler.dataFiles().length).toBeGreaterThanOrEqual(2);
      const compactions = handler.status().compactions;
      // The compaction is planned first, then the TRUNCATE is applied while its job runs.
      handler.compactNow();
      lsn = lsnAfter(lsn);
      handler.truncate(lsn);
      const values = [9999n, BASE, 'eu', 1];
      lsn = lsnAfter(lsn);
      handler.apply(lsn, [{ op: 'insert', values, key: keyOf(codec, values) }]);
      for (let i = 0; i < 100 && handler.status().compactions === compactions; i++)
        await new Promise((res) => setTimeout(res, 50));
      expect(handler.status().compactions).toBeGreaterThan(compactions);
      const commit = await handler.commit();
      const iceberg = await IcebergTable.load(store, new URL(commit.metadataLocation!).pathname.slice(1));
      const reader = new SnapshotReader(store, () => pool);
      const snap = await handler.snapshotAtLeast(lsn);
      const rows = await reader.readAll(await reader.manifest(snap.objectKey), schema.fields);
      expect(rows.map((row) => row[0])).toEqual([9999n]);
      expect((await iceberg.currentState()).dataFiles.reduce((n, f) => n + f.recordCount, 0)).toBe(1);
      await handler.close();
    });
  }
});
