/**
 * Invariant 6: what an outside Iceberg reader sees equals what the scan path returns.
 *
 * A table is written through the engine (inserts, upserts, deletes across many flushed files,
 * so there are position deletes), committed, and then read three ways:
 * - icebird, an independent JavaScript Iceberg reader, over loopback HTTP (v2, position deletes);
 * - DuckDB's read_parquet over every data file, with the position-delete files anti-joined;
 * - our own snapshot reader (the scan endpoint's path),
 * and all three are compared with a reference model.
 *
 * v3 tables (Puffin deletion vectors, row lineage) have no outside reader here: icebird does
 * not read v3 and DuckDB's iceberg extension cannot be downloaded on this machine. They are
 * checked by our own reader against the model, by the deletion-vector codec's byte-exact
 * golden-file tests, and by structural checks of the v3 metadata below.
 */

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { icebergRead } from 'icebird';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAvroFile } from '../lib/iceberg/avro-file.ts';
import { readDeletionVectorBlob } from '../lib/iceberg/delete-files.ts';
import { IcebergTable } from '../lib/iceberg/iceberg-table.ts';
import { asLsn, type Lsn, lsnAfter } from '../lib/lsn.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { SnapshotReader } from '../lib/read/snapshot-reader.ts';
import { buildSchema } from '../lib/schema/table-schema.ts';
import { LocalObjectStore } from '../lib/store/local-object-store.ts';
import { type DecodedOp, keyOf, rowCodec } from '../lib/txn/transaction.ts';
import { readIcebergRows } from './support/iceberg-rows.ts';
import { ReferenceModel, rng } from './support/model.ts';
import { type StaticServer, serveFolder } from './support/static-server.ts';
import { openTestTable } from './support/table-harness.ts';

const pool = new ParquetWorkerPool(2);
let dir: string;
let server: StaticServer;
let store: LocalObjectStore;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlice-'));
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
    { name: 'name', type: 'string', nullable: false },
    { name: 'qty', type: 'int' },
    { name: 'score', type: 'double' },
    { name: 'ok', type: 'boolean' },
  ],
  ['id'],
);
const codec = rowCodec(schema);

async function writeTable(name: string, formatVersion: 2 | 3, seed: number) {
  const { catalog, handler } = await openTestTable({
    name,
    schema,
    pool,
    formatVersion,
    store,
    options: { memSliceMaxRows: 50 },
  });
  const model = new ReferenceModel(schema);
  const r = rng(seed);
  let lsn = asLsn(0n);
  for (let t = 0; t < 40; t++) {
    const ops: DecodedOp[] = [];
    for (let i = 0; i < 25; i++) {
      const k = Math.floor(r() * 300);
      const op = t < 8 ? 'insert' : r() < 0.7 ? 'upsert' : 'delete';
      const values =
        op === 'delete'
          ? [BigInt(k), null, null, null, null]
          : [BigInt(k), `name-${k}-${t}`, r() < 0.1 ? null : Math.floor(r() * 1000), r() * 100, r() < 0.5];
      ops.push({ op, values, key: keyOf(codec, values) });
    }
    lsn = lsnAfter(lsn);
    handler.apply(lsn, ops);
    model.commit(lsn, ops);
    if (t % 10 === 9) await handler.commit();
  }
  const commit = await handler.commit();
  const snap = await handler.snapshotAtLeast(lsn);
  await handler.close();
  return { catalog, commit, model, lsn, snapshotKey: snap.objectKey };
}

/** Canonical text of a row for comparison across readers. */
function canon(row: { id: unknown; name: unknown; qty: unknown; score: unknown; ok: unknown }): string {
  return JSON.stringify([
    String(row.id),
    row.name,
    row.qty ?? null,
    row.score === null ? null : Number(row.score).toPrecision(15),
    row.ok,
  ]);
}

function modelRows(model: ReferenceModel, lsn: Lsn): string[] {
  return model
    .at(lsn)
    .map((t) => canon(JSON.parse(t)))
    .sort();
}

describe('outside readers agree with the engine', () => {
  it('v2: icebird over HTTP, DuckDB read_parquet and our scan all equal the model', async () => {
    const { commit, model, lsn, snapshotKey } = await writeTable('readers_v2', 2, 7);
    expect(commit.lsn).toBe(lsn);
    const expected = modelRows(model, lsn);
    expect(expected.length).toBeGreaterThan(50);

    // icebird reads the table by its location over loopback HTTP.
    const tableUrl = `${server.url}/tables/readers_v2`;
    const viaIcebird = (await icebergRead({ tableUrl })) as Record<string, unknown>[];
    expect(viaIcebird.map((r) => canon(r as never)).sort()).toEqual(expected);

    // The metadata really has position deletes for icebird to apply.
    const iceberg = await IcebergTable.load(store, new URL(commit.metadataLocation!).pathname.slice(1));
    const summary = iceberg.currentSnapshot()!.summary;
    expect(Number(summary['total-position-deletes'])).toBeGreaterThan(0);
    expect(Number(summary['total-data-files'])).toBeGreaterThan(1);
    expect(summary['moonlink.lsn']).toBe(String(lsn));

    // DuckDB reads every data file and delete file as plain Parquet.
    const entries = await iceberg.liveEntries();
    const local = (uri: string) => path.join(dir, store.keyFromUri(uri)!);
    const dataFiles = entries
      .filter((e) => e.data_file.content === 0)
      .map((e) => `'${local(e.data_file.file_path)}'`);
    const deleteFiles = entries
      .filter((e) => e.data_file.content === 1)
      .map((e) => `'${local(e.data_file.file_path)}'`);
    expect(deleteFiles.length).toBeGreaterThan(0);
    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    const counts = await duck.runAndReadAll(
      `select count(*)::bigint as n from read_parquet([${dataFiles.join(',')}])`,
    );
    expect(Number(counts.getRowObjects()[0].n)).toBe(
      entries.filter((e) => e.data_file.content === 0).reduce((s, e) => s + e.data_file.record_count, 0),
    );
    const liveRows = await duck.runAndReadAll(`
      with d as (select * from read_parquet([${dataFiles.join(',')}], filename = true, file_row_number = true)),
           del as (select file_path, pos from read_parquet([${deleteFiles.join(',')}]))
      select d.id::varchar as id, d.name, d.qty, d.score, d.ok from d
      where not exists (
        select 1 from del where del.file_path = '${server.url}/' || substr(d.filename, ${dir.length + 2}) and del.pos = d.file_row_number)`);
    const viaDuck = liveRows
      .getRowObjectsJS()
      .map((r) => canon(r as never))
      .sort();
    expect(viaDuck).toEqual(expected);

    // Our scan path (published read snapshot) agrees too.
    const reader = new SnapshotReader(store, () => pool);
    const viaScan = (await reader.readAll(await reader.manifest(snapshotKey), schema.fields))
      .map((v) => canon({ id: v[0], name: v[1], qty: v[2], score: v[3], ok: v[4] }))
      .sort();
    expect(viaScan).toEqual(expected);
  });

  it('v3: deletion vectors in Puffin and row lineage, checked by our reader (no outside v3 reader here)', async () => {
    const { commit, model, lsn } = await writeTable('readers_v3', 3, 11);
    const iceberg = await IcebergTable.load(store, new URL(commit.metadataLocation!).pathname.slice(1));
    const meta = iceberg.metadata;
    expect(meta['format-version']).toBe(3);
    expect(meta['next-row-id']).toBeGreaterThan(0);
    const snaps = meta.snapshots;
    for (let i = 1; i < snaps.length; i++) {
      expect(snaps[i]['first-row-id']).toBe(snaps[i - 1]['first-row-id']! + snaps[i - 1]['added-rows']!);
    }
    // Delete files are deletion vectors in Puffin files, with offsets and the data file they belong to.
    const list = decodeAvroFile(
      await store.get(store.keyFromUri(iceberg.currentSnapshot()!['manifest-list'])!),
    );
    expect(list.meta['format-version']).toBe('3');
    expect(list.records.some((m) => m.content === 0 && typeof m.first_row_id === 'number')).toBe(true);
    const dvs = (await iceberg.liveEntries()).filter((e) => e.data_file.content === 1);
    expect(dvs.length).toBeGreaterThan(0);
    for (const { data_file: df } of dvs) {
      expect(df.file_format).toBe('PUFFIN');
      expect(df.referenced_data_file).toMatch(/\/data\/\d{8}-.*\.parquet$/);
      const blob = await store.getRange(
        store.keyFromUri(df.file_path)!,
        df.content_offset!,
        df.content_size_in_bytes!,
      );
      expect(readDeletionVectorBlob(blob, df.file_path).size).toBe(df.record_count);
    }
    const dataEntries = (await iceberg.liveEntries()).filter((e) => e.data_file.content === 0);
    expect(dataEntries.every((e) => typeof e.data_file.first_row_id === 'number')).toBe(true);
    const rows = (await readIcebergRows(iceberg, store, pool, schema))
      .map((v) => canon({ id: v[0], name: v[1], qty: v[2], score: v[3], ok: v[4] }))
      .sort();
    expect(rows).toEqual(modelRows(model, lsn));
  });
});
