/**
 * Bounded Iceberg metadata under many small commits: each commit adds one small data file and
 * changes deletes (the previous commit's file and one random older file, full sets each time).
 * Prints one JSON line: manifests per snapshot, metadata JSON bytes, seconds.
 *
 *   npx tsx bench/iceberg-metadata.ts [commits=10000] [formatVersion=2|3] [memory|local]
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { IcebergTable } from '../lib/iceberg/iceberg-table.ts';
import { RoaringBitmap64 } from '../lib/iceberg/roaring.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { buildSchema, type TableDefinition } from '../lib/schema/table-schema.ts';
import { LocalObjectStore } from '../lib/store/local-object-store.ts';
import { MemoryObjectStore } from '../lib/store/memory-object-store.ts';
import type { ObjectStore } from '../lib/store/object-store.ts';

export interface WorkloadOptions {
  commits: number;
  formatVersion: 2 | 3;
  store: ObjectStore;
  pool: ParquetWorkerPool;
  maxManifests?: number;
  keepSnapshots?: number;
  rowsPerFile?: number;
  seed?: number;
}

export interface WorkloadReport {
  commits: number;
  formatVersion: number;
  liveDataFiles: number;
  liveDeleteFiles: number;
  maxManifestsPerSnapshot: number;
  finalManifests: number;
  maxMetadataJsonBytes: number;
  finalMetadataJsonBytes: number;
  metadataJsonBytesAt: Record<string, number>;
  snapshotsRetained: number;
  seconds: number;
  msPerCommit: number;
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

export interface WorkloadResult {
  report: WorkloadReport;
  table: IcebergTable;
  /** What the table should hold: every data file key, and each file's deleted positions. */
  dataKeys: string[];
  deletes: Map<string, RoaringBitmap64>;
}

export async function runWorkload(o: WorkloadOptions): Promise<WorkloadResult> {
  const rows = o.rowsPerFile ?? 100;
  const schema = buildSchema(
    [
      { name: 'id', type: 'long' },
      { name: 'name', type: 'string', nullable: false },
      { name: 'score', type: 'double' },
    ],
    ['id'],
  );
  const def: TableDefinition = {
    name: 'bench',
    tableUuid: crypto.randomUUID(),
    schema,
    formatVersion: o.formatVersion,
    createdAt: new Date().toISOString(),
  };
  const options = { pool: o.pool, maxManifests: o.maxManifests ?? 8, keepSnapshots: o.keepSnapshots ?? 20 };
  const table = await IcebergTable.create(o.store, `tables/bench_v${o.formatVersion}`, def, options);
  const random = rng(o.seed ?? 42);
  const live: string[] = [];
  const deletes = new Map<string, RoaringBitmap64>();
  const report: WorkloadReport = {
    commits: o.commits,
    formatVersion: o.formatVersion,
    liveDataFiles: 0,
    liveDeleteFiles: 0,
    maxManifestsPerSnapshot: 0,
    finalManifests: 0,
    maxMetadataJsonBytes: 0,
    finalMetadataJsonBytes: 0,
    metadataJsonBytesAt: {},
    snapshotsRetained: 0,
    seconds: 0,
    msPerCommit: 0,
  };
  const started = performance.now();
  for (let i = 0; i < o.commits; i++) {
    const key = `tables/bench_v${o.formatVersion}/data/${String(i).padStart(8, '0')}.parquet`;
    // A stand-in for the Parquet file (commits never read data files), so the store's contents
    // can be compared with what the table references.
    await o.store.put(key, new TextEncoder().encode(key));
    const changed = new Map<string, RoaringBitmap64 | null>();
    const touch = (k: string): void => {
      const next = deletes.get(k)?.clone() ?? new RoaringBitmap64();
      next.add(Math.floor(random() * rows));
      deletes.set(k, next);
      changed.set(k, next);
    };
    if (live.length > 0) touch(live[live.length - 1]);
    if (live.length > 1) touch(live[Math.floor(random() * (live.length - 1))]);
    const result = await table.commit({
      addedDataFiles: [
        {
          key,
          recordCount: rows,
          fileSizeBytes: 2048,
          columnStats: new Map([
            [
              1,
              { valueCount: rows, nullCount: 0, lower: BigInt(i * rows), upper: BigInt(i * rows + rows - 1) },
            ],
            [2, { valueCount: rows, nullCount: 0, lower: `name-${i}-a`, upper: `name-${i}-z` }],
            [3, { valueCount: rows, nullCount: 0, nanCount: 0, lower: 0, upper: 1 }],
          ]),
        },
      ],
      removedDataFiles: [],
      deletes: changed,
      summary: { 'moonlink.lsn': String(i + 1) },
    });
    live.push(key);
    const summary = table.currentSnapshot()!.summary;
    const manifests = Number(summary['manifests-created']) + Number(summary['manifests-kept']);
    report.maxManifestsPerSnapshot = Math.max(report.maxManifestsPerSnapshot, manifests);
    if ((i + 1) % Math.max(1, Math.floor(o.commits / 10)) === 0 || i === o.commits - 1) {
      const bytes = (await o.store.head(result.metadataKey))!.size;
      report.metadataJsonBytesAt[String(i + 1)] = bytes;
      report.maxMetadataJsonBytes = Math.max(report.maxMetadataJsonBytes, bytes);
    }
    if (result.obsoleteKeys.length > 0) await o.store.deleteMany(result.obsoleteKeys);
  }
  report.seconds = Number(((performance.now() - started) / 1000).toFixed(2));
  report.msPerCommit = Number(((report.seconds * 1000) / o.commits).toFixed(2));
  const summary = table.currentSnapshot()!.summary;
  report.liveDataFiles = Number(summary['total-data-files']);
  report.liveDeleteFiles = Number(summary['total-delete-files']);
  report.finalManifests = Number(summary['manifests-created']) + Number(summary['manifests-kept']);
  report.finalMetadataJsonBytes = (await o.store.head(table.metadataKey))!.size;
  report.snapshotsRetained = table.metadata.snapshots.length;
  return { report, table, dataKeys: live, deletes };
}

async function main(): Promise<void> {
  const commits = Number(process.argv[2] ?? 10000);
  const formatVersion = Number(process.argv[3] ?? 2) === 3 ? 3 : 2;
  const kind = process.argv[4] ?? 'memory';
  const pool = new ParquetWorkerPool(1);
  let dir: string | undefined;
  let store: ObjectStore;
  if (kind === 'local') {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ice-bench-'));
    store = new LocalObjectStore(dir);
  } else {
    store = new MemoryObjectStore();
  }
  try {
    const { report } = await runWorkload({ commits, formatVersion, store, pool });
    console.log(JSON.stringify({ bench: 'iceberg-metadata', store: kind, ...report }));
  } finally {
    await pool.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
