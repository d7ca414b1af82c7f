/**
 * Benchmark rows and the two baselines every throughput scenario is measured against, in the
 * same run: the floor (the same rows built into Arrow and encoded to Parquet with parquet-wasm,
 * nothing else) and a peer (DuckDB loading the same rows from NDJSON and writing Parquet).
 */
import { createWriteStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import * as arrowNs from 'apache-arrow';
import { arrowSchemaFor, buildRecordBatch, tableToIpc } from '../lib/columns/arrow-convert.ts';
import { columnBufferFor } from '../lib/columns/column-buffer.ts';
import { encodeParquet } from '../lib/parquet/parquet-codec.mjs';
import { buildSchema } from '../lib/schema/table-schema.ts';

export const columns = [
  { name: 'id', type: 'long', nullable: false },
  { name: 'name', type: 'string' },
  { name: 'score', type: 'double' },
  { name: 'at', type: 'timestamptz' },
];
export const schema = buildSchema(columns, ['id']);

const BASE_US = 1_700_000_000_000_000n;

/** Row i as the JSON text a client sends (~20-character string, double, ISO timestamp). */
export function rowJson(id: number, variant = 0): string {
  const us = BASE_US + BigInt(id) * 1000n + BigInt(variant);
  const ms = Number(us / 1000n);
  const iso = `${new Date(ms).toISOString().slice(0, 23)}${String(us % 1000n).padStart(3, '0')}Z`;
  return `{"id":${id},"name":"customer-${String(id).padStart(11, '0')}","score":${((id * 7919 + variant) % 100000) / 100},"at":"${iso}"}`;
}

/** Time a function; returns seconds. */
export async function timed(fn: () => Promise<void> | void): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** Rows [start, start + n) built into Arrow: typed columns, hand-built UTF-8 (what the floor times). */
function rowBatch(start: number, n: number): arrowNs.RecordBatch {
  const cols = schema.fields.map((f) => columnBufferFor(f.type));
  for (let i = 0; i < n; i++) {
    const id = start + i;
    cols[0].push(BigInt(id));
    cols[1].push(`customer-${String(id).padStart(11, '0')}`);
    cols[2].push(((id * 7919) % 100000) / 100);
    cols[3].push(BASE_US + BigInt(id) * 1000n);
  }
  const all = Uint32Array.from({ length: n }, (_, i) => i);
  return buildRecordBatch(
    arrowSchemaFor(schema.fields),
    cols.map((c) => c.toData(all)),
  );
}

/** Rows [start, start + n) as an Arrow IPC stream (the bodies of the append-arrow scenario). */
export function arrowRows(start: number, n: number): Uint8Array {
  return tableToIpc(rowBatch(start, n));
}

/** DuckDB loads the rows from a Parquet file and writes zstd Parquet. */
export async function duckdbParquetAppendRowsPerSec(rows: number, dir: string): Promise<number> {
  const input = path.join(dir, 'append-in.parquet');
  // One file of several row groups: the batches as one Arrow stream.
  const batches: arrowNs.RecordBatch[] = [];
  for (let start = 0; start < rows; start += 1_000_000)
    batches.push(rowBatch(start, Math.min(1_000_000, rows - start)));
  await fs.writeFile(input, encodeParquet(tableToIpc(new arrowNs.Table(batches)), { compression: 'zstd' }));
  const db = await DuckDBInstance.create(':memory:', { threads: String(os.availableParallelism()) });
  const c = await db.connect();
  const secs = await timed(async () => {
    await c.run(
      `COPY (SELECT * FROM read_parquet('${input}')) TO '${path.join(dir, 'duck.parquet')}' (FORMAT parquet, COMPRESSION zstd)`,
    );
  });
  c.closeSync();
  return rows / secs;
}

/** The floor: build the rows into Arrow (typed columns, hand-built UTF-8) and encode zstd Parquet. */
export async function floorRowsPerSec(rows: number, batchRows = 1_000_000): Promise<number> {
  const secs = await timed(() => {
    for (let start = 0; start < rows; start += batchRows) {
      encodeParquet(tableToIpc(rowBatch(start, Math.min(batchRows, rows - start))), { compression: 'zstd' });
    }
  });
  return rows / secs;
}

/** Writes NDJSON lines produced by `line(i)` for i in [0, n). */
export async function writeNdjson(file: string, n: number, line: (i: number) => string): Promise<void> {
  const out = createWriteStream(file);
  let chunk = '';
  for (let i = 0; i < n; i++) {
    chunk += `${line(i)}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      chunk = '';
    }
  }
  out.write(chunk);
  await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
}

export async function tmpDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

const DUCK_COLUMNS = "{'id': 'BIGINT', 'name': 'VARCHAR', 'score': 'DOUBLE', 'at': 'TIMESTAMPTZ'}";

/** DuckDB loads the NDJSON rows and writes zstd Parquet. */
export async function duckdbAppendRowsPerSec(rows: number, dir: string): Promise<number> {
  const input = path.join(dir, 'append.ndjson');
  await writeNdjson(input, rows, (i) => rowJson(i));
  const db = await DuckDBInstance.create(':memory:', { threads: String(os.availableParallelism()) });
  const c = await db.connect();
  const secs = await timed(async () => {
    await c.run(
      `COPY (SELECT * FROM read_json('${input}', format = 'newline_delimited', columns = ${DUCK_COLUMNS})) TO '${path.join(dir, 'duck.parquet')}' (FORMAT parquet, COMPRESSION zstd)`,
    );
  });
  c.closeSync();
  return rows / secs;
}

export interface UpsertOp {
  op: 'insert' | 'upsert' | 'delete';
  id: number;
  variant: number;
}

/** The upsert workload: over `keys` keys, 40% inserts, 50% updates, 10% deletes, deterministic. */
export function upsertOps(count: number, keys: number): UpsertOp[] {
  let s = 12345;
  const next = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 4294967296;
  };
  const ops: UpsertOp[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const x = next();
    const id = Math.floor(next() * keys);
    ops[i] = { op: x < 0.4 ? 'insert' : x < 0.9 ? 'upsert' : 'delete', id, variant: i };
  }
  return ops;
}

/**
 * DuckDB as the upsert peer: a table with a primary key; each batch of 1,000 operations is one
 * transaction (deletes, then INSERT OR REPLACE of the batch's last write per key); then export.
 */
export async function duckdbUpsertOpsPerSec(ops: UpsertOp[], batch: number, dir: string): Promise<number> {
  const input = path.join(dir, 'upserts.ndjson');
  await writeNdjson(input, ops.length, (i) => {
    const o = ops[i];
    const row = o.op === 'delete' ? `{"id":${o.id}}` : rowJson(o.id, o.variant);
    return `{"seq":${i},"b":${Math.floor(i / batch)},"op":"${o.op}","row":${row}}`;
  });
  const db = await DuckDBInstance.create(':memory:', { threads: String(os.availableParallelism()) });
  const c = await db.connect();
  const batches = Math.ceil(ops.length / batch);
  const secs = await timed(async () => {
    await c.run('CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR, score DOUBLE, "at" TIMESTAMPTZ)');
    await c.run(
      `CREATE TEMP TABLE staging AS SELECT seq, b, op, row.id AS id, row.name AS name, row.score AS score, row."at"::TIMESTAMPTZ AS "at"
       FROM read_json('${input}', format = 'newline_delimited', columns = {'seq': 'BIGINT', 'b': 'BIGINT', 'op': 'VARCHAR', 'row': 'STRUCT(id BIGINT, name VARCHAR, score DOUBLE, "at" VARCHAR)'})`,
    );
    for (let b = 0; b < batches; b++) {
      await c.run('BEGIN');
      await c.run(`DELETE FROM t WHERE id IN (SELECT id FROM staging WHERE b = ${b} AND op = 'delete')`);
      await c.run(
        `INSERT OR REPLACE INTO t SELECT id, name, score, "at" FROM (
           SELECT *, row_number() OVER (PARTITION BY id ORDER BY seq DESC) AS rn FROM staging WHERE b = ${b}) WHERE rn = 1 AND op <> 'delete'`,
      );
      await c.run('COMMIT');
    }
    await c.run(`COPY t TO '${path.join(dir, 'duck-upsert.parquet')}' (FORMAT parquet, COMPRESSION zstd)`);
  });
  c.closeSync();
  return ops.length / secs;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
