/**
 * Data files keep dictionary encoding for columns that repeat values and drop it for mostly
 * distinct ones; tail files use none, and no Parquet statistics either. Checked in the Parquet
 * metadata of files the worker writes (the statistics with DuckDB's parquet_metadata).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import * as arrow from 'apache-arrow';
import * as pw from 'parquet-wasm/node';
import { afterAll, describe, expect, it } from 'vitest';
import { arrowSchemaFor, buildRecordBatch, readColumn, tableFromIpc } from '../lib/columns/arrow-convert.ts';
import { columnBufferFor } from '../lib/columns/column-buffer.ts';
import { mostlyDistinctColumns } from '../lib/engine/dictionary-choice.ts';
import { encodeColumnsIn } from '../lib/engine/worker-jobs.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { buildSchema } from '../lib/schema/table-schema.ts';

const pool = new ParquetWorkerPool(1);
afterAll(() => pool.close());

const schema = buildSchema(
  [
    { name: 'id', type: 'long' },
    { name: 'status', type: 'string' },
    { name: 'name', type: 'string' },
    { name: 'day', type: 'date' },
    { name: 'score', type: 'double' },
    { name: 'ok', type: 'boolean' },
    { name: 'blob', type: 'binary' },
  ],
  ['id'],
);

function columns(n: number) {
  const cols = schema.fields.map((f) => columnBufferFor(f.type));
  for (let i = 0; i < n; i++) {
    const row = [
      BigInt(i),
      ['new', 'paid', 'shipped'][i % 3],
      `customer-${i}`,
      19_000 + (i % 7),
      i * 0.5,
      i % 2 === 0,
      new Uint8Array([i & 255, i >> 8]),
    ];
    row.forEach((v, c) => {
      cols[c].push(v);
    });
  }
  return cols;
}

async function encodings(bytes: Uint8Array): Promise<Map<string, string[]>> {
  const file = await pw.ParquetFile.fromFile(new Blob([bytes]));
  const rowGroup = file.metadata().rowGroup(0);
  const out = new Map<string, string[]>();
  schema.fields.forEach((f, c) => {
    out.set(
      f.name,
      rowGroup
        .column(c)
        .encodings()
        .map((e) => pw.Encoding[e]),
    );
  });
  return out;
}

/** Column chunks of the file that carry a min/max (DuckDB reads the footer). */
async function chunksWithStats(bytes: Uint8Array): Promise<number> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlstats-'));
  try {
    const file = path.join(dir, 'f.parquet');
    await fs.writeFile(file, bytes);
    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    const rows = await duck.runAndReadAll(
      `SELECT count(*)::INTEGER FROM parquet_metadata('${file}') WHERE stats_min IS NOT NULL OR stats_min_value IS NOT NULL`,
    );
    duck.closeSync();
    return rows.getRows()[0][0] as number;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const hasDictionary = (e: string[] | undefined) => (e ?? []).some((x) => x.includes('DICTIONARY'));

describe('dictionary encoding choice', () => {
  it('picks the mostly distinct columns from a sample', () => {
    const cols = columns(5000);
    expect(mostlyDistinctColumns(schema.fields, (c, i) => cols[c].get(i), 5000)).toEqual([
      'id',
      'name',
      'score',
      'blob',
    ]);
    // Compaction asks the same of Arrow data (its values come as Arrow gives them).
    const all = Uint32Array.from({ length: 5000 }, (_, i) => i);
    const table = new arrow.Table(
      buildRecordBatch(
        arrowSchemaFor(schema.fields),
        cols.map((c) => c.toData(all)),
      ),
    );
    expect(mostlyDistinctColumns(schema.fields, (c, i) => table.getChildAt(c)?.get(i), 5000)).toEqual([
      'id',
      'name',
      'score',
      'blob',
    ]);
    // Too few rows to bother.
    expect(mostlyDistinctColumns(schema.fields, (c, i) => cols[c].get(i), 100)).toEqual([]);
  });

  it('data files keep dictionaries only where values repeat; tail files have none', async () => {
    const n = 5000;
    const cols = columns(n);
    const rows = Uint32Array.from({ length: n }, (_, i) => i);
    for (const withStats of [true, false]) {
      const { bytes } = await encodeColumnsIn(pool, {
        fields: schema.fields,
        images: cols.map((c) => c.image()),
        rows,
        compression: 'zstd',
        withStats,
      });
      const enc = await encodings(bytes);
      for (const name of ['id', 'name', 'score', 'blob'])
        expect(hasDictionary(enc.get(name)), name).toBe(false);
      for (const name of ['status', 'day']) expect(hasDictionary(enc.get(name)), name).toBe(withStats);
      // A data file's chunks all have min/max (engines prune row groups by them); a tail file's none.
      expect(await chunksWithStats(bytes)).toBe(withStats ? schema.fields.length : 0);
      // The values are all there either way.
      const table = tableFromIpc(await pool.decode(bytes));
      expect(readColumn(schema.fields[1].type, table, 1).slice(0, 4)).toEqual([
        'new',
        'paid',
        'shipped',
        'new',
      ]);
      expect(readColumn(schema.fields[0].type, table, 0)[n - 1]).toBe(BigInt(n - 1));
    }
  });
});
