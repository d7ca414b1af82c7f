/**
 * Model-based randomized test of the engine: seeded random sequences of transactions (insert,
 * upsert, delete), streamed transactions that commit or abort, flushes (Iceberg commits),
 * compactions, and reads at random LSNs. Every read is compared row for row with a plain
 * reference model at the LSN the snapshot reports; every Iceberg commit is read back from its
 * metadata and compared too. Small thresholds make rows cross the MemSlice/file boundary
 * all the time; large ones keep them in memory.
 *
 * `MODEL_RUNS` sets the number of sequences per mode (1,000 in `npm test`; the long
 * mode is `MODEL_RUNS=2000 npx vitest run test/engine-model.test.ts`). A failure prints its
 * seed; `MODEL_SEED=<n>` replays one.
 */

import { afterAll, describe, expect, it } from 'vitest';
import type { MemoryCatalog } from '../lib/catalog/file-catalog.ts';
import type { EngineOptions } from '../lib/engine/options.ts';
import type { TableHandler } from '../lib/engine/table-handler.ts';
import { IcebergTable } from '../lib/iceberg/iceberg-table.ts';
import type { Lsn } from '../lib/lsn.ts';
import { asLsn, lsnAfter } from '../lib/lsn.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { SnapshotReader } from '../lib/read/snapshot-reader.ts';
import { buildSchema, type TableDefinition } from '../lib/schema/table-schema.ts';
import type { Value } from '../lib/schema/values.ts';
import type { MemoryObjectStore } from '../lib/store/memory-object-store.ts';
import { OpBatch } from '../lib/txn/op-batch.ts';
import { type DecodedOp, keyOf, rowCodec } from '../lib/txn/transaction.ts';
import { readIcebergRows } from './support/iceberg-rows.ts';
import { ReferenceModel, rng } from './support/model.ts';
import { openTestTable } from './support/table-harness.ts';

const pool = new ParquetWorkerPool(2);
afterAll(() => pool.close());

const RUNS = Number(process.env.MODEL_RUNS ?? 1000);
const ONLY_SEED = process.env.MODEL_SEED ? Number(process.env.MODEL_SEED) : undefined;

const schema = buildSchema(
  [
    { name: 'id', type: 'long' },
    { name: 'name', type: 'string', nullable: false },
    { name: 'qty', type: 'int' },
    { name: 'price', type: 'decimal(12,2)' },
    { name: 'at', type: 'timestamptz' },
    { name: 'tags', type: 'list<string>' },
  ],
  ['id'],
);
const codec = rowCodec(schema);

function randomRow(r: () => number, key: number): Value[] {
  return [
    BigInt(key),
    `n${Math.floor(r() * 1000)}`,
    r() < 0.2 ? null : Math.floor(r() * 100),
    BigInt(Math.floor(r() * 1e7)) - 5_000_000n,
    BigInt(Math.floor(r() * 2 ** 40)) * 1000n,
    r() < 0.3 ? null : Array.from({ length: Math.floor(r() * 3) }, (_, i) => `t${i}`),
  ];
}

function randomOps(r: () => number, keys: number, count: number): DecodedOp[] {
  const ops: DecodedOp[] = [];
  for (let i = 0; i < count; i++) {
    const k = Math.floor(r() * keys);
    const x = r();
    const op = x < 0.4 ? 'insert' : x < 0.8 ? 'upsert' : 'delete';
    const values = op === 'delete' ? [BigInt(k), null, null, null, null, null] : randomRow(r, k);
    ops.push({ op, values, key: keyOf(codec, values) });
  }
  return ops;
}

interface Harness {
  store: MemoryObjectStore;
  catalog: MemoryCatalog;
  def: TableDefinition;
  handler: TableHandler;
  reader: SnapshotReader;
}

async function harness(options: Partial<EngineOptions>): Promise<Harness> {
  const t = await openTestTable({ name: 'm', schema, pool, options: { candidateGraceMs: 0, ...options } });
  return {
    ...t,
    store: t.store as MemoryObjectStore,
    catalog: t.catalog as MemoryCatalog,
    reader: new SnapshotReader(t.store, () => pool),
  };
}

async function readSnapshot(h: Harness, minLsn: Lsn): Promise<{ lsn: Lsn; rows: string[] }> {
  const snap = await h.handler.snapshotAtLeast(minLsn);
  const m = await h.reader.manifest(snap.objectKey);
  const model = new ReferenceModel(schema);
  const rows = (await h.reader.readAll(m, schema.fields)).map((v) => model.rowText(v)).sort();
  return { lsn: asLsn(BigInt(m.lsn)), rows };
}

async function runSequence(
  seed: number,
  options: Partial<EngineOptions>,
  steps: number,
): Promise<{ reads: number; commits: number; compactions: number }> {
  const r = rng(seed);
  const h = await harness(options);
  const model = new ReferenceModel(schema);
  const keys = 5 + Math.floor(r() * 60);
  let lsn = asLsn(0n);
  let reads = 0;
  let commits = 0;
  const open = new Map<string, { ops: DecodedOp[] }>();
  let xid = 0;
  const trace = process.env.MODEL_TRACE ? (msg: string) => console.log(`[${seed}] ${msg}`) : () => undefined;
  try {
    for (let step = 0; step < steps; step++) {
      const x = r();
      trace(
        `step ${step} x=${x.toFixed(3)} lsn=${lsn} status=${JSON.stringify(h.handler.status(), (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`,
      );
      if (x < 0.5) {
        const ops = randomOps(r, keys, 1 + Math.floor(r() * 12));
        lsn = lsnAfter(lsn, asLsn(BigInt(1 + Math.floor(r() * 3))));
        // Every other transaction arrives in columns, as the request scanner gives them.
        h.handler.apply(lsn, lsn % 2n === 0n ? OpBatch.of(schema, ops) : ops);
        model.commit(lsn, ops);
        trace(`apply ${lsn}: ${ops.map((o) => `${o.op}:${o.key}`).join(' ')}`);
      } else if (x < 0.62) {
        // Streamed transaction: ops arrive now; it commits or aborts in a later step.
        const id = `x${++xid}`;
        const ops = randomOps(r, keys, 1 + Math.floor(r() * 30));
        for (const op of ops) h.handler.streamOp(id, op);
        open.set(id, { ops });
        trace(`stream ${id}: ${ops.map((o) => `${o.op}:${o.key}`).join(' ')}`);
      } else if (x < 0.7 && open.size > 0) {
        const [id, t] = [...open.entries()][Math.floor(r() * open.size)];
        open.delete(id);
        if (r() < 0.7) {
          lsn = lsnAfter(lsn);
          h.handler.streamCommit(id, lsn);
          model.commit(lsn, t.ops);
          trace(`commit ${id} at ${lsn}`);
        } else {
          h.handler.streamAbort(id);
          trace(`abort ${id}`);
        }
      } else if (x < 0.85) {
        const at = asLsn(BigInt(Math.floor(r() * Number(lsn + 1n))));
        const got = await readSnapshot(h, at);
        reads++;
        trace(`read at ${at} → lsn ${got.lsn}: ${got.rows.length} rows (model ${model.at(got.lsn).length})`);
        expect(got.lsn, `seed ${seed}: snapshot older than asked`).toBeGreaterThanOrEqual(at);
        expect(got.rows, `seed ${seed} step ${step}: read at LSN ${got.lsn}`).toEqual(model.at(got.lsn));
      } else if (x < 0.9) {
        const c = await h.handler.commit();
        commits++;
        const iceberg = await IcebergTable.load(h.store, (await h.catalog.getPointer('m'))!.metadataKey!);
        const rows = (await readIcebergRows(iceberg, h.store, pool, schema))
          .map((v) => model.rowText(v))
          .sort();
        expect(rows, `seed ${seed} step ${step}: Iceberg commit at LSN ${c.lsn}`).toEqual(model.at(c.lsn));
      } else if (x < 0.95) {
        h.handler.compactNow();
        trace('compact');
      } else {
        await new Promise((res) => setTimeout(res, Math.floor(r() * 5)));
      }
    }
    const last = await readSnapshot(h, lsn);
    expect(last.rows, `seed ${seed}: final read`).toEqual(model.at(last.lsn));
    const status = h.handler.status();
    // No store faults here: a failed compaction is a bug, even though the engine carries on.
    expect(status.compactionsFailed, `seed ${seed}: failed compactions`).toBe(0);
    return { reads, commits, compactions: status.compactions };
  } finally {
    await h.handler.close();
  }
}

const small: Partial<EngineOptions> = { memSliceMaxRows: 8, compactMinSmallFiles: 2, targetFileBytes: 4096 };
const large: Partial<EngineOptions> = { memSliceMaxRows: 1_000_000 };

describe('engine against a reference model', () => {
  for (const [mode, options] of [
    ['small thresholds (rows cross into files constantly)', small],
    ['large thresholds (rows stay in memory)', large],
  ] as const) {
    it(
      `${mode}: ${ONLY_SEED ?? RUNS} seeded sequences`,
      async () => {
        const seeds =
          ONLY_SEED !== undefined ? [ONLY_SEED] : Array.from({ length: RUNS }, (_, i) => 1000 + i);
        let reads = 0;
        let commits = 0;
        let compactions = 0;
        for (const seed of seeds) {
          try {
            const r = await runSequence(seed, options, 60);
            reads += r.reads;
            commits += r.commits;
            compactions += r.compactions;
          } catch (e) {
            console.error(`model test failed: replay with MODEL_SEED=${seed}`);
            throw e;
          }
        }
        expect(reads).toBeGreaterThan(seeds.length);
        expect(commits).toBeGreaterThan(0);
        if (options === small && seeds.length >= 10) expect(compactions).toBeGreaterThan(0);
        console.log(
          `${mode}: ${seeds.length} sequences, ${reads} reads and ${commits} Iceberg commits checked, ${compactions} compactions`,
        );
      },
      Math.max(120_000, RUNS * 500),
    );
  }
});
