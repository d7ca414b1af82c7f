/**
 * Outside readers of tables IcebergTable writes.
 *
 * - icebird (an independent JavaScript Iceberg reader) reads the v2 table by its location over
 *   loopback HTTP — metadata JSON, Avro manifest lists and manifests, Parquet data files and
 *   position-delete files — and must return exactly the live rows, deletes applied, for the
 *   current snapshot and for older metadata versions (time travel).
 * - DuckDB reads every data file and delete file with read_parquet: row counts match the
 *   manifests, the Parquet field ids are the Iceberg ids, and the delete files hold exactly the
 *   deleted (file_path, pos) pairs.
 *
 * Format v3 has no outside reader here: icebird does not read v3 tables (no deletion vectors,
 * no Puffin), and DuckDB's iceberg extension cannot be downloaded on this machine. The v3 paths
 * (Puffin deletion vectors, row lineage) are checked by our own reader against a model in
 * iceberg-table.test.ts, by the byte-exact golden-file tests of the deletion-vector codec in
 * deletion-vector.test.ts, and by the structural checks of the v3 metadata there.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { icebergRead } from 'icebird';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchFromValues, tableToIpc } from '../lib/columns/arrow-convert.ts';
import { computeStats } from '../lib/columns/column-stats.ts';
import { type DataFileEntry, IcebergTable } from '../lib/iceberg/iceberg-table.ts';
import { RoaringBitmap64 } from '../lib/iceberg/roaring.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { buildSchema } from '../lib/schema/table-schema.ts';
import type { Value } from '../lib/schema/values.ts';
import { LocalObjectStore } from '../lib/store/local-object-store.ts';
import { type StaticServer, serveFolder } from './support/static-server.ts';

const pool = new ParquetWorkerPool(2);
let dir: string;
let server: StaticServer;
let store: LocalObjectStore;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ice-outside-'));
  server = await serveFolder(dir);
  // Locations in the metadata are http URLs, so icebird fetches everything from the server.
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
    { name: 'name', type: 'string', nullable: false },
    { name: 'score', type: 'double' },
    { name: 'qty', type: 'int' },
  ],
  ['id'],
);

type Row = [bigint, string, number | null, number | null];

/** Rows of a file: ids first..first+n, some nulls. */
function rowsFor(first: number, n: number): Row[] {
  return Array.from({ length: n }, (_, i) => {
    const id = first + i;
    return [BigInt(id), `name-${id}`, id % 5 === 0 ? null : id * 1.5, id % 7 === 0 ? null : id * 10] as Row;
  });
}

function canon(r: { id: unknown; name: unknown; score: unknown; qty: unknown }): string {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return JSON.stringify([String(r.id), r.name, num(r.score), num(r.qty)]);
}

class Model {
  files = new Map<string, Row[]>();
  deletes = new Map<string, Set<number>>();
  rows(): string[] {
    const out: string[] = [];
    for (const [k, rows] of this.files) {
      rows.forEach((r, i) => {
        if (!this.deletes.get(k)?.has(i)) out.push(canon({ id: r[0], name: r[1], score: r[2], qty: r[3] }));
      });
    }
    return out.sort();
  }
}

describe('outside readers', () => {
  it('icebird (over HTTP) and DuckDB read the v2 table IcebergTable writes', async () => {
    const root = 'tables/outside_v2';
    const table = await IcebergTable.create(
      store,
      root,
      {
        name: 'outside_v2',
        tableUuid: crypto.randomUUID(),
        schema,
        formatVersion: 2,
        createdAt: new Date().toISOString(),
      },
      { pool, maxManifests: 4 },
    );
    const model = new Model();
    const versions: { file: string; rows: string[] }[] = [];
    let next = 0;
    const addFile = async (n: number): Promise<DataFileEntry> => {
      const key = `${root}/data/${String(next).padStart(5, '0')}-${crypto.randomUUID()}.parquet`;
      const rows = rowsFor(next * 100, n);
      next++;
      const cols = schema.fields.map((_, c) => rows.map((r) => r[c] as Value));
      const bytes = await pool.encode(tableToIpc(batchFromValues(schema.fields, cols)), {
        compression: 'zstd',
      });
      await store.put(key, bytes);
      model.files.set(key, rows);
      return {
        key,
        recordCount: n,
        fileSizeBytes: bytes.length,
        columnStats: computeStats(schema.fields, n, (c, i) => rows[i][c]),
      };
    };
    const setDeletes = (key: string, positions: number[]): [string, RoaringBitmap64 | null] => {
      const all = new Set([...(model.deletes.get(key) ?? []), ...positions]);
      model.deletes.set(key, all);
      const bm = new RoaringBitmap64();
      for (const p of all) bm.add(p);
      return [key, bm];
    };
    const commit = async (input: Partial<Parameters<IcebergTable['commit']>[0]>) => {
      const r = await table.commit({
        addedDataFiles: [],
        removedDataFiles: [],
        deletes: new Map(),
        summary: {},
        ...input,
      });
      versions.push({ file: path.basename(r.metadataKey), rows: model.rows() });
    };

    // Appends, deletes changing the same files several times, a compaction, more appends.
    const files: DataFileEntry[] = [];
    for (let i = 0; i < 4; i++) {
      const f = await addFile(20 + i);
      files.push(f);
      await commit({ addedDataFiles: [f] });
    }
    const [f0, f1, f2, f3] = files.map((f) => f.key);
    await commit({ deletes: new Map([setDeletes(f0, [0, 5]), setDeletes(f1, [19])]) });
    await commit({ deletes: new Map([setDeletes(f0, [7, 8, 19])]) });
    const f4 = await addFile(30);
    await commit({
      addedDataFiles: [f4],
      deletes: new Map([setDeletes(f4.key, [29, 0]), setDeletes(f2, [3])]),
    });
    await commit({ deletes: new Map([setDeletes(f1, [1, 2, 3])]) });
    // Compaction: f0 and f1's live rows move into one new file; their deletes leave with them.
    const compacted: Row[] = [];
    for (const k of [f0, f1]) {
      model.files.get(k)!.forEach((r, i) => {
        if (!model.deletes.get(k)?.has(i)) compacted.push(r);
      });
      model.files.delete(k);
      model.deletes.delete(k);
    }
    const ckey = `${root}/data/compacted-${crypto.randomUUID()}.parquet`;
    const ccols = schema.fields.map((_, c) => compacted.map((r) => r[c] as Value));
    const cbytes = await pool.encode(tableToIpc(batchFromValues(schema.fields, ccols)), {
      compression: 'zstd',
    });
    await store.put(ckey, cbytes);
    model.files.set(ckey, compacted);
    await commit({
      addedDataFiles: [
        {
          key: ckey,
          recordCount: compacted.length,
          fileSizeBytes: cbytes.length,
          columnStats: computeStats(schema.fields, compacted.length, (c, i) => compacted[i][c]),
        },
      ],
      removedDataFiles: [f0, f1],
    });
    await commit({ deletes: new Map([setDeletes(f3, [4]), setDeletes(ckey, [0])]) });
    await commit({ addedDataFiles: [await addFile(10)] });
    expect(table.currentSnapshot()!.summary['total-data-files']).toBe(String(model.files.size));

    // icebird: the current snapshot, then every earlier version by its metadata file name.
    const tableUrl = `${server.url}/${root}`;
    const current = (await icebergRead({ tableUrl })) as Record<string, unknown>[];
    expect(current.map((r) => canon(r as never)).sort()).toEqual(model.rows());
    for (const v of versions) {
      const rows = (await icebergRead({ tableUrl, metadataFileName: v.file })) as Record<string, unknown>[];
      expect(rows.map((r) => canon(r as never)).sort(), v.file).toEqual(v.rows);
    }

    // DuckDB: every data file and delete file as plain Parquet.
    const entries = await table.liveEntries();
    const local = (uri: string) => path.join(dir, store.keyFromUri(uri)!);
    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    for (const e of entries.filter((x) => x.data_file.content === 0)) {
      const file = local(e.data_file.file_path);
      const n = await duck.runAndReadAll(`select count(*)::bigint as n from read_parquet('${file}')`);
      expect(Number(n.getRowObjects()[0].n)).toBe(e.data_file.record_count);
      const ids = await duck.runAndReadAll(
        `select name, field_id from parquet_schema('${file}') where field_id is not null order by field_id`,
      );
      expect(ids.getRowObjectsJS().map((r) => [r.name, Number(r.field_id)])).toEqual([
        ['id', 1],
        ['name', 2],
        ['score', 3],
        ['qty', 4],
      ]);
    }
    const deleteEntries = entries.filter((x) => x.data_file.content === 1);
    expect(deleteEntries.length).toBe([...model.deletes.values()].filter((s) => s.size > 0).length);
    for (const e of deleteEntries) {
      const file = local(e.data_file.file_path);
      const rows = await duck.runAndReadAll(`select file_path, pos from read_parquet('${file}')`);
      const pairs = rows.getRowObjectsJS().map((r) => [r.file_path as string, Number(r.pos)] as const);
      const target = e.data_file.referenced_data_file!;
      expect(pairs.every(([p]) => p === target)).toBe(true);
      // Sorted by position, exactly the model's deletes for that file.
      const positions = pairs.map(([, p]) => p);
      expect(positions).toEqual([...model.deletes.get(store.keyFromUri(target)!)!].sort((a, b) => a - b));
      expect(e.data_file.record_count).toBe(positions.length);
      const ids = await duck.runAndReadAll(
        `select name, field_id from parquet_schema('${file}') where field_id is not null order by field_id`,
      );
      expect(ids.getRowObjectsJS().map((r) => [r.name, Number(r.field_id)])).toEqual([
        ['pos', 2147483545],
        ['file_path', 2147483546],
      ]);
    }
    duck.closeSync();
  });
});
