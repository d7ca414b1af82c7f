/**
 * IcebergTable round trips (format v2 and v3): real Parquet data files, appends, several
 * commits changing one file's deletes, deletes on a file added in the same commit, a
 * compaction-style replace. After every commit `currentState()` must equal a model exactly,
 * the rows read back must match, older metadata files must still load, and the Avro and JSON
 * metadata must follow the spec (field ids, file metadata keys, sequence-number and row-id
 * inheritance, separate data/delete manifests, delete files referencing their data file).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchFromValues, tableToIpc } from '../lib/columns/arrow-convert.ts';
import { computeStats } from '../lib/columns/column-stats.ts';
import { decodeAvroFile } from '../lib/iceberg/avro-file.ts';
import { readPositionDeletes } from '../lib/iceberg/delete-files.ts';
import {
  type DataFileEntry,
  IcebergConflictError,
  type IcebergState,
  IcebergTable,
} from '../lib/iceberg/iceberg-table.ts';
import { readPuffinFooter } from '../lib/iceberg/puffin.ts';
import { RoaringBitmap64 } from '../lib/iceberg/roaring.ts';
import { parseTableMetadata } from '../lib/iceberg/table-metadata.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { buildSchema, type TableDefinition } from '../lib/schema/table-schema.ts';
import type { Value } from '../lib/schema/values.ts';
import { LocalObjectStore } from '../lib/store/local-object-store.ts';
import { MemoryObjectStore } from '../lib/store/memory-object-store.ts';
import { putRetrying } from '../lib/store/object-store.ts';
import { readIcebergRows } from './support/iceberg-rows.ts';

const pool = new ParquetWorkerPool(2);
let dir: string;
let store: LocalObjectStore;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ice-table-'));
  store = new LocalObjectStore(dir);
});
afterAll(async () => {
  await pool.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const schema = buildSchema(
  [
    { name: 'id', type: 'long' },
    { name: 'name', type: 'string', nullable: false },
    { name: 'score', type: 'double' },
    { name: 'day', type: 'date' },
  ],
  ['id'],
);

function definition(name: string, formatVersion: 2 | 3): TableDefinition {
  return { name, tableUuid: crypto.randomUUID(), schema, formatVersion, createdAt: new Date().toISOString() };
}

type Row = [bigint, string, number | null, number];

function rowsFor(first: number, n: number): Row[] {
  return Array.from({ length: n }, (_, i) => {
    const id = first + i;
    return [BigInt(id), `name-${id}`, id % 4 === 0 ? null : id / 3, 19000 + id] as Row;
  });
}

/** Writes a real Parquet data file and returns its entry (with computed column stats). */
async function writeDataFile(key: string, rows: Row[]): Promise<DataFileEntry> {
  const columns = schema.fields.map((_, c) => rows.map((r) => r[c] as Value));
  const bytes = await pool.encode(tableToIpc(batchFromValues(schema.fields, columns)), {
    compression: 'zstd',
  });
  await store.put(key, bytes);
  return {
    key,
    recordCount: rows.length,
    fileSizeBytes: bytes.length,
    columnStats: computeStats(schema.fields, rows.length, (c, i) => rows[i][c]),
  };
}

/** What the table should hold: data files with their rows, and each file's deleted positions. */
class Model {
  files = new Map<string, Row[]>();
  deletes = new Map<string, Set<number>>();

  liveRows(): string[] {
    const out: string[] = [];
    for (const [k, rows] of this.files) {
      const del = this.deletes.get(k);
      rows.forEach((r, i) => {
        if (!del?.has(i)) out.push(JSON.stringify(r.map(String)));
      });
    }
    return out.sort();
  }

  clone(): Model {
    const m = new Model();
    m.files = new Map(this.files);
    m.deletes = new Map([...this.deletes].map(([k, v]) => [k, new Set(v)]));
    return m;
  }
}

function bitmap(positions: Iterable<number>): RoaringBitmap64 {
  const bm = new RoaringBitmap64();
  for (const p of positions) bm.add(p);
  return bm;
}

function expectState(state: IcebergState, model: Model): void {
  expect(state.dataFiles.map((f) => f.key).sort()).toEqual([...model.files.keys()].sort());
  for (const f of state.dataFiles) expect(f.recordCount).toBe(model.files.get(f.key)!.length);
  const deletes = Object.fromEntries([...state.deletes].map(([k, bm]) => [k, bm.toArray()]));
  const expected = Object.fromEntries(
    [...model.deletes].filter(([, s]) => s.size > 0).map(([k, s]) => [k, [...s].sort((a, b) => a - b)]),
  );
  expect(deletes).toEqual(expected);
}

async function rowsOf(table: IcebergTable): Promise<string[]> {
  return (await readIcebergRows(table, store, pool, schema))
    .map((r) => JSON.stringify((r as unknown[]).map(String)))
    .sort();
}

/** Every record field (and list element) of an Avro schema carries an Iceberg id. */
function allFieldsHaveIds(schemaJson: unknown, where = 'schema'): string[] {
  const missing: string[] = [];
  const visit = (t: unknown, at: string): void => {
    if (Array.isArray(t)) {
      for (const u of t) visit(u, at);
      return;
    }
    if (typeof t !== 'object' || t === null) return;
    const o = t as Record<string, unknown>;
    if (o.type === 'record') {
      for (const f of o.fields as Record<string, unknown>[]) {
        if (typeof f['field-id'] !== 'number') missing.push(`${at}.${f.name}`);
        visit(f.type, `${at}.${f.name}`);
      }
    } else if (o.type === 'array') {
      const items = o.items as Record<string, unknown>;
      const isMap = o.logicalType === 'map';
      if (!isMap && typeof o['element-id'] !== 'number') missing.push(`${at}[]`);
      visit(items, `${at}[]`);
    }
  };
  visit(schemaJson, where);
  return missing;
}

for (const formatVersion of [2, 3] as const) {
  describe(`IcebergTable round trip, format v${formatVersion}`, () => {
    const root = `tables/round_v${formatVersion}`;
    const dataKey = (name: string) => `${root}/data/${name}.parquet`;
    let table: IcebergTable;
    const model = new Model();
    const history: { metadataKey: string; model: Model }[] = [];

    async function commitAndCheck(input: Parameters<IcebergTable['commit']>[0]): Promise<void> {
      const result = await table.commit(input);
      expect(result.metadataKey).toBe(table.metadataKey);
      expect(result.metadataLocation).toBe(store.uri(result.metadataKey));
      expect(Number.isSafeInteger(result.snapshotId) && result.snapshotId > 0).toBe(true);
      expectState(await table.currentState(), model);
      expect(await rowsOf(table)).toEqual(model.liveRows());
      history.push({ metadataKey: result.metadataKey, model: model.clone() });
      // The version hint follows the newest metadata file.
      const hint = new TextDecoder().decode(await store.get(`${root}/metadata/version-hint.text`));
      expect(`${root}/metadata/v${hint}.metadata.json`).toBe(result.metadataKey);
    }

    it('creates v1.metadata.json with no snapshot, unpartitioned and unsorted', async () => {
      table = await IcebergTable.create(store, root, definition(`round_v${formatVersion}`, formatVersion), {
        pool,
      });
      expect(table.metadataKey).toBe(`${root}/metadata/v1.metadata.json`);
      const meta = parseTableMetadata(new TextDecoder().decode(await store.get(table.metadataKey)));
      expect(meta['format-version']).toBe(formatVersion);
      expect(meta.location).toBe(store.uri(root));
      expect(meta['partition-specs']).toEqual([{ 'spec-id': 0, fields: [] }]);
      expect(meta['last-partition-id']).toBe(999);
      expect(meta['sort-orders']).toEqual([{ 'order-id': 0, fields: [] }]);
      expect(meta['last-column-id']).toBe(4);
      expect(meta.properties['write.parquet.compression-codec']).toBe('zstd');
      expect(JSON.parse(meta.properties['schema.name-mapping.default'])).toEqual([
        { 'field-id': 1, names: ['id'] },
        { 'field-id': 2, names: ['name'] },
        { 'field-id': 3, names: ['score'] },
        { 'field-id': 4, names: ['day'] },
      ]);
      expect(meta.snapshots).toEqual([]);
      expect(table.currentSnapshot()).toBe(undefined);
      if (formatVersion === 3) expect(meta['next-row-id']).toBe(0);
      else expect(meta['current-snapshot-id']).toBe(-1);
      expect((await table.currentState()).dataFiles).toEqual([]);
      await expect(
        IcebergTable.create(store, root, definition('again', formatVersion), { pool }),
      ).rejects.toBeInstanceOf(IcebergConflictError);
    });

    it('appends data files', async () => {
      const a = await writeDataFile(dataKey('a'), rowsFor(0, 10));
      const b = await writeDataFile(dataKey('b'), rowsFor(10, 12));
      model.files.set(a.key, rowsFor(0, 10));
      model.files.set(b.key, rowsFor(10, 12));
      await commitAndCheck({
        addedDataFiles: [a, b],
        removedDataFiles: [],
        deletes: new Map(),
        summary: { 'moonlink.lsn': '1' },
      });
      const s = table.currentSnapshot()!;
      expect(s.summary.operation).toBe('append');
      expect(s.summary['moonlink.lsn']).toBe('1');
      expect(s.summary['total-records']).toBe('22');
      expect(s.summary['total-data-files']).toBe('2');
      // Column stats come back from the manifest.
      const state = await table.currentState();
      const aStats = state.dataFiles.find((f) => f.key === a.key)!.columnStats;
      expect(aStats.get(1)).toEqual({ valueCount: 10, nullCount: 0, lower: 0n, upper: 9n });
      expect(aStats.get(3)!.nullCount).toBe(3);
    });

    it('changes one file’s deletes over several commits', async () => {
      const a = dataKey('a');
      const b = dataKey('b');
      for (const [positions, lsn] of [
        [[1, 3], '2'],
        [[1, 3, 5, 9], '3'],
      ] as const) {
        model.deletes.set(a, new Set(positions));
        await commitAndCheck({
          addedDataFiles: [],
          removedDataFiles: [],
          deletes: new Map([[a, bitmap(positions)]]),
          summary: { 'moonlink.lsn': lsn },
        });
        expect(table.currentSnapshot()!.summary.operation).toBe('delete');
        expect(table.currentSnapshot()!.summary['total-delete-files']).toBe('1');
      }
      // Both files' deletes in one commit; then a's deletes go away entirely.
      model.deletes.set(a, new Set([1, 3, 5, 9, 0]));
      model.deletes.set(b, new Set([11]));
      await commitAndCheck({
        addedDataFiles: [],
        removedDataFiles: [],
        deletes: new Map([
          [a, bitmap([0, 1, 3, 5, 9])],
          [b, bitmap([11])],
        ]),
        summary: { 'moonlink.lsn': '4' },
      });
      expect(table.currentSnapshot()!.summary['total-position-deletes']).toBe('6');
      model.deletes.delete(a);
      await commitAndCheck({
        addedDataFiles: [],
        removedDataFiles: [],
        deletes: new Map([[a, null]]),
        summary: { 'moonlink.lsn': '5' },
      });
      const s = table.currentSnapshot()!.summary;
      expect(s['total-delete-files']).toBe('1');
      expect(s['total-position-deletes']).toBe('1');
      expect(s['removed-delete-files']).toBe('1');
    });

    it('adds a file with deletes in the same commit', async () => {
      const c = await writeDataFile(dataKey('c'), rowsFor(100, 8));
      model.files.set(c.key, rowsFor(100, 8));
      model.deletes.set(c.key, new Set([2, 7]));
      await commitAndCheck({
        addedDataFiles: [c],
        removedDataFiles: [],
        deletes: new Map([[c.key, bitmap([2, 7])]]),
        summary: { 'moonlink.lsn': '6' },
      });
      expect(table.currentSnapshot()!.summary.operation).toBe('overwrite');
    });

    it('replaces files like a compaction, their deletes leaving with them', async () => {
      const a = dataKey('a');
      const b = dataKey('b');
      const live = [...model.files.get(a)!, ...model.files.get(b)!].filter((r) => r[0] !== 21n); // b pos 11
      const d = await writeDataFile(dataKey('d'), live);
      model.files.delete(a);
      model.files.delete(b);
      model.deletes.delete(a);
      model.deletes.delete(b);
      model.files.set(d.key, live);
      await commitAndCheck({
        addedDataFiles: [d],
        removedDataFiles: [a, b],
        deletes: new Map(),
        summary: { 'moonlink.lsn': '7' },
      });
      const s = table.currentSnapshot()!.summary;
      expect(s.operation).toBe('replace');
      expect(s['deleted-data-files']).toBe('2');
      expect(s['removed-delete-files']).toBe('1');
      expect(s['total-data-files']).toBe('2');
      expect(s['total-records']).toBe(String(live.length + 8));
    });

    it('loads older metadata files and the latest one', async () => {
      for (const h of history) {
        const old = await IcebergTable.load(store, h.metadataKey, { pool });
        expectState(await old.currentState(), h.model);
        expect(await rowsOf(old)).toEqual(h.model.liveRows());
      }
      const latest = await IcebergTable.loadLatest(store, root, { pool });
      expect(latest!.metadataKey).toBe(table.metadataKey);
      expect(await IcebergTable.loadLatest(store, `${root}-missing`)).toBe(undefined);
      // Without the hint, listing finds the newest version.
      await store.delete(`${root}/metadata/version-hint.text`);
      expect((await IcebergTable.loadLatest(store, root, { pool }))!.metadataKey).toBe(table.metadataKey);
      await store.put(
        `${root}/metadata/version-hint.text`,
        new TextEncoder().encode(table.metadataKey.match(/v(\d+)\./)![1]),
      );
    });

    it('writes spec-conformant manifests, manifest lists and delete files', async () => {
      const meta = table.metadata;
      const snap = table.currentSnapshot()!;
      expect(meta['current-snapshot-id']).toBe(snap['snapshot-id']);
      expect(meta.refs.main).toEqual({ 'snapshot-id': snap['snapshot-id'], type: 'branch' });
      expect(meta['last-sequence-number']).toBe(snap['sequence-number']);
      expect(meta['snapshot-log'].at(-1)!['snapshot-id']).toBe(snap['snapshot-id']);
      expect(meta['metadata-log'].length).toBe(history.length);

      const list = decodeAvroFile(await store.get(store.keyFromUri(snap['manifest-list'])!));
      expect(list.meta['avro.codec']).toBe('null');
      expect(list.meta['snapshot-id']).toBe(String(snap['snapshot-id']));
      expect(list.meta['parent-snapshot-id']).toBe(String(snap['parent-snapshot-id']));
      expect(list.meta['sequence-number']).toBe(String(snap['sequence-number']));
      expect(list.meta['format-version']).toBe(String(formatVersion));
      expect(allFieldsHaveIds(JSON.parse(list.meta['avro.schema']))).toEqual([]);
      expect(list.records.length).toBeLessThanOrEqual(8);

      const dataSeq = new Map<string, number>();
      const deleteEntries: { seq: number; target: string; file: Record<string, unknown> }[] = [];
      for (const m of list.records) {
        const manifest = decodeAvroFile(await store.get(store.keyFromUri(m.manifest_path as string)!));
        expect(manifest.meta['format-version']).toBe(String(formatVersion));
        expect(manifest.meta['partition-spec']).toBe('[]');
        expect(manifest.meta['partition-spec-id']).toBe('0');
        expect(manifest.meta['schema-id']).toBe('0');
        expect(JSON.parse(manifest.meta.schema).fields.map((f: { id: number }) => f.id)).toEqual([
          1, 2, 3, 4,
        ]);
        expect(manifest.meta.content).toBe(m.content === 0 ? 'data' : 'deletes');
        expect(allFieldsHaveIds(JSON.parse(manifest.meta['avro.schema']))).toEqual([]);
        let added = 0;
        let existing = 0;
        let deleted = 0;
        for (const r of manifest.records) {
          const e = r as {
            status: number;
            snapshot_id: number | null;
            sequence_number: number | null;
            file_sequence_number: number | null;
            data_file: Record<string, unknown>;
          };
          const df = e.data_file;
          // Data and delete files never share a manifest.
          expect(df.content === 0).toBe(m.content === 0);
          if (e.status === 1) {
            added++;
            // New entries inherit their sequence numbers (and v3 row ids) from the manifest list.
            expect(e.sequence_number).toBe(null);
            expect(e.file_sequence_number).toBe(null);
            expect(m.added_snapshot_id).toBe(e.snapshot_id);
            if (formatVersion === 3) expect(df.first_row_id).toBe(null);
          } else {
            if (e.status === 0) existing++;
            else deleted++;
            expect(typeof e.sequence_number).toBe('number');
            expect(typeof e.file_sequence_number).toBe('number');
            if (formatVersion === 3 && df.content === 0) expect(typeof df.first_row_id).toBe('number');
          }
          const seq = e.sequence_number ?? (m.sequence_number as number);
          const fileSeq = e.file_sequence_number ?? (m.sequence_number as number);
          const snapshotId = e.snapshot_id ?? (m.added_snapshot_id as number);
          if (e.status === 2) {
            // A DELETED entry names the snapshot that deleted the file; the sequence numbers stay.
            expect(meta.snapshots.find((x) => x['snapshot-id'] === snapshotId)!['sequence-number']).toBe(
              m.sequence_number,
            );
            continue;
          }
          // Every file here was added with its snapshot's sequence number, and keeps it.
          const addedBy = meta.snapshots.find((x) => x['snapshot-id'] === snapshotId)!;
          expect(seq).toBe(addedBy['sequence-number']);
          expect(fileSeq).toBe(addedBy['sequence-number']);
          if (df.content === 0) {
            dataSeq.set(df.file_path as string, seq);
            expect(df.file_format).toBe('PARQUET');
            expect(df.sort_order_id).toBe(0);
          } else {
            expect(df.referenced_data_file).toEqual(expect.stringContaining(`${root}/data/`));
            expect(df.sort_order_id).toBe(null);
            deleteEntries.push({ seq, target: df.referenced_data_file as string, file: df });
          }
        }
        expect([m.added_files_count, m.existing_files_count, m.deleted_files_count]).toEqual([
          added,
          existing,
          deleted,
        ]);
      }
      expect(deleteEntries.length).toBe(1); // c's deletes
      // Our own reader materializes the same values, in memory and when loading from the files.
      const fresh = await IcebergTable.load(store, table.metadataKey, { pool });
      for (const e of [...(await table.liveEntries()), ...(await fresh.liveEntries())]) {
        const addedBy = meta.snapshots.find((x) => x['snapshot-id'] === e.snapshot_id)!;
        expect([e.sequence_number, e.file_sequence_number]).toEqual([
          addedBy['sequence-number'],
          addedBy['sequence-number'],
        ]);
      }
      for (const d of deleteEntries) {
        // A delete applies to data files with a data sequence number ≤ its own.
        expect(d.seq).toBeGreaterThanOrEqual(dataSeq.get(d.target)!);
        const key = store.keyFromUri(d.file.file_path as string)!;
        if (formatVersion === 2) {
          expect(d.file.file_format).toBe('PARQUET');
          expect(key).toMatch(/\/data\/delete-[0-9a-f-]+\.parquet$/);
          const byFile = await readPositionDeletes(pool, await store.get(key));
          expect([...byFile.keys()]).toEqual([d.target]);
          expect(byFile.get(d.target)!.toArray()).toEqual([2, 7]);
          const bounds = Object.fromEntries(
            (d.file.lower_bounds as { key: number; value: Buffer }[]).map((b) => [b.key, b.value]),
          );
          expect(bounds[2147483546].toString()).toBe(d.target);
          expect(bounds[2147483545].readBigInt64LE(0)).toBe(2n);
          const upper = Object.fromEntries(
            (d.file.upper_bounds as { key: number; value: Buffer }[]).map((b) => [b.key, b.value]),
          );
          expect(upper[2147483545].readBigInt64LE(0)).toBe(7n);
          expect(d.file.record_count).toBe(2);
        } else {
          expect(d.file.file_format).toBe('PUFFIN');
          expect(key).toMatch(/\/data\/dv-[0-9a-f-]+\.puffin$/);
          const puffin = readPuffinFooter(await store.get(key));
          const blob = puffin.blobs.find((b) => b.properties?.['referenced-data-file'] === d.target)!;
          expect(blob.type).toBe('deletion-vector-v1');
          expect(blob['snapshot-id']).toBe(-1);
          expect(blob['sequence-number']).toBe(-1);
          expect(blob.properties!.cardinality).toBe('2');
          expect(d.file.content_offset).toBe(blob.offset);
          expect(d.file.content_size_in_bytes).toBe(blob.length);
          expect(d.file.record_count).toBe(2);
        }
      }
    });

    if (formatVersion === 3) {
      it('tracks row lineage: first-row-id, added-rows, next-row-id and data file first_row_id', async () => {
        const meta = table.metadata;
        const snaps = meta.snapshots;
        for (let i = 1; i < snaps.length; i++) {
          expect(snaps[i]['first-row-id']).toBe(snaps[i - 1]['first-row-id']! + snaps[i - 1]['added-rows']!);
        }
        const last = snaps.at(-1)!;
        expect(meta['next-row-id']).toBe(last['first-row-id']! + last['added-rows']!);
        // Row ids of live data files never overlap and lie below next-row-id; a table loaded from
        // the files (row ids inherited from the manifest lists) sees the same ids.
        const rangesOf = async (t: IcebergTable) =>
          (await t.currentState()).dataFiles
            .map((f) => [f.firstRowId!, f.firstRowId! + f.recordCount] as const)
            .sort((x, y) => x[0] - y[0]);
        const ranges = await rangesOf(table);
        for (let i = 1; i < ranges.length; i++) expect(ranges[i][0]).toBeGreaterThanOrEqual(ranges[i - 1][1]);
        expect(ranges.at(-1)![1]).toBeLessThanOrEqual(meta['next-row-id']!);
        expect(await rangesOf(await IcebergTable.load(store, table.metadataKey, { pool }))).toEqual(ranges);
        // a and b (22 rows) took ids 0-21 in the first snapshot, c took 22-29, then d.
        const ids = Object.fromEntries(
          (await table.currentState()).dataFiles.map((f) => [f.key, f.firstRowId]),
        );
        expect(ids[`${root}/data/c.parquet`]).toBe(22);
        expect(ids[`${root}/data/d.parquet`]).toBe(30);
        expect(snaps[0]['first-row-id']).toBe(0);
        expect(snaps[0]['added-rows']).toBe(22);
        const list = decodeAvroFile(await store.get(store.keyFromUri(last['manifest-list'])!));
        expect(list.meta['first-row-id']).toBe(String(last['first-row-id']));
        for (const m of list.records) {
          if (m.content === 0) expect(typeof m.first_row_id).toBe('number');
          else expect(m.first_row_id).toBe(null);
        }
      });
    }

    it('rejects invalid commits and a stale writer', async () => {
      const base = { addedDataFiles: [], removedDataFiles: [], deletes: new Map(), summary: {} };
      await expect(table.commit({ ...base, removedDataFiles: [dataKey('a')] })).rejects.toThrow(
        /not a live data file/,
      );
      await expect(
        table.commit({ ...base, deletes: new Map([[dataKey('nope'), bitmap([1])]]) }),
      ).rejects.toThrow(/not a live data file/);
      const d = (await table.currentState()).dataFiles[0];
      await expect(table.commit({ ...base, addedDataFiles: [d] })).rejects.toThrow(/already in the table/);
      // Two writers from the same version: the second one's metadata file already exists.
      const other = await IcebergTable.load(store, table.metadataKey, { pool });
      const e = await writeDataFile(dataKey('e'), rowsFor(200, 3));
      await table.commit({ ...base, addedDataFiles: [e] });
      const before = new Set((await listKeys(root)).filter((k) => k.includes('/metadata/')));
      await expect(
        other.commit({ ...base, addedDataFiles: [await writeDataFile(dataKey('f'), rowsFor(300, 2))] }),
      ).rejects.toBeInstanceOf(IcebergConflictError);
      // The failed attempt leaves no manifests or lists behind.
      const after = (await listKeys(root)).filter((k) => k.includes('/metadata/'));
      expect(after.filter((k) => !before.has(k))).toEqual([]);
    });
  });
}

async function listKeys(prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

describe('putRetrying', () => {
  /** Fails the first `failures` puts, then behaves. */
  class FlakyStore extends MemoryObjectStore {
    puts = 0;
    constructor(private failures: number) {
      super();
    }
    override async put(key: string, body: Uint8Array): Promise<void> {
      this.puts++;
      if (this.failures-- > 0) throw new Error('transient');
      return super.put(key, body);
    }
  }

  it('writes through transient failures, and gives up after its attempts', async () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const flaky = new FlakyStore(2);
    await putRetrying(flaky, 'a', bytes);
    expect(flaky.puts).toBe(3);
    expect(await flaky.get('a')).toEqual(bytes);
    const broken = new FlakyStore(3);
    await expect(putRetrying(broken, 'b', bytes)).rejects.toThrow('transient');
    expect(broken.puts).toBe(3);
    expect(await broken.head('b')).toBeUndefined();
  });
});
