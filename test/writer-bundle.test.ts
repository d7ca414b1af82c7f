/**
 * The writer container's program as it ships: `npm run build:writer` (esbuild bundles of the
 * writer and its Parquet worker, parquet-wasm's .wasm beside them), started with plain `node`
 * — no TypeScript loader — against the emulators (s3rver, dynalite, kinesalite). It opens a
 * table created in the catalog, applies records put on the stream, flushes them to Parquet in
 * its worker thread, commits to Iceberg, and drains on SIGTERM (exit 0).
 *
 * Not covered: the container image itself (no Docker engine here); the Dockerfile runs this
 * same bundle.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsAdapters } from '../lib/aws/aws-adapters.ts';
import type { AwsConfig } from '../lib/aws/aws-config.ts';
import { IcebergTable } from '../lib/iceberg/iceberg-table.ts';
import { tableRootOf } from '../lib/store/object-keys.ts';
import { createTable, definitionFromBody } from '../lib/table-admin.ts';
import { silentLogger } from '../lib/util/logger.ts';
import { type Emulators, startEmulators } from '../localstack/emulators.ts';
import { freePort } from './support/service-process.ts';

const run = promisify(execFile);
let emu: Emulators;
let out: string;
let child: ChildProcess | undefined;

beforeAll(async () => {
  out = await fs.mkdtemp(path.join(os.tmpdir(), 'mlbundle-'));
  emu = await startEmulators({ kinesisShards: 1 });
}, 120_000);
afterAll(async () => {
  child?.kill('SIGKILL');
  await emu?.stop();
  await fs.rm(out, { recursive: true, force: true });
});

describe('the writer bundle (npm run build:writer)', () => {
  it('builds, starts with plain node, applies, flushes in its worker, commits, drains', async () => {
    const built = await run(process.execPath, ['infra/build-writer.mjs', out]);
    expect(built.stdout).toMatch(/writer-main\.js \d+ KiB, parquet-worker\.js \d+ KiB/);
    expect((await fs.readdir(out)).sort()).toEqual(
      [
        'parquet-worker.js',
        'parquet-worker.js.map',
        'parquet_wasm_bg.wasm',
        'writer-main.js',
        'writer-main.js.map',
      ].sort(),
    );
    const config: AwsConfig = {
      region: 'us-east-1',
      bucket: emu.s3.bucket,
      prefix: 'warehouse',
      catalogTable: emu.dynamodb.table,
      stream: emu.kinesis.stream,
      endpoints: { s3: emu.s3.endpoint, dynamodb: emu.dynamodb.endpoint, kinesis: emu.kinesis.endpoint },
      writerUrlTemplate: 'http://127.0.0.1:1',
      writerGroups: 1,
      writerGroup: 0,
    } as AwsConfig;
    const a = awsAdapters(config, silentLogger);
    const def = definitionFromBody({
      name: 'bundled',
      columns: [
        { name: 'id', type: 'long' },
        { name: 'v', type: 'string' },
      ],
      primaryKey: ['id'],
    });
    await createTable(a.store, a.catalog, def, a.log);
    const port = await freePort();
    let output = '';
    child = spawn(process.execPath, ['--max-semi-space-size=64', path.join(out, 'writer-main.js')], {
      cwd: os.tmpdir(),
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
        MOONLINK_BUCKET: emu.s3.bucket,
        MOONLINK_PREFIX: 'warehouse',
        MOONLINK_CATALOG_TABLE: emu.dynamodb.table,
        MOONLINK_STREAM: emu.kinesis.stream,
        MOONLINK_S3_ENDPOINT: emu.s3.endpoint,
        MOONLINK_DYNAMODB_ENDPOINT: emu.dynamodb.endpoint,
        MOONLINK_KINESIS_ENDPOINT: emu.kinesis.endpoint,
        MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
        MOONLINK_COMPACT_MIN_SMALL_FILES: '2',
        MOONLINK_COMPACT_YIELD_UTILIZATION: '1',
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'WARN',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (c) => {
      output += c;
    });
    child.stderr?.on('data', (c) => {
      output += c;
    });
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      const ok = await fetch(`${url}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 300 || child.exitCode !== null) throw new Error(`the bundle did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    let last = 0n;
    for (let t = 0; t < 5; t++) {
      const ops = Array.from({ length: 200 }, (_, i) => ({
        op: 'insert',
        row: { id: t * 200 + i, v: `b${t}` },
      }));
      last = await a.log.append('bundled', new TextEncoder().encode(JSON.stringify({ ops })));
    }
    const snap = await fetch(`${url}/internal/tables/bundled/snapshot?minLsn=${last}`, { method: 'POST' });
    expect(snap.status, output).toBe(200);
    const flushed = (await (
      await fetch(`${url}/internal/tables/bundled/flush`, { method: 'POST' })
    ).json()) as {
      metadataLocation: string;
    };
    expect(flushed.metadataLocation).toMatch(/^s3:\/\/.*\/tables\/bundled\/metadata\/v\d+\.metadata\.json$/);
    const iceberg = await IcebergTable.load(a.store, a.store.keyFromUri(flushed.metadataLocation)!);
    expect(iceberg.metadataKey.startsWith(`${tableRootOf(def)}/`)).toBe(true);
    const state = await iceberg.currentState();
    expect(state.dataFiles.reduce((n, f) => n + f.recordCount, 0)).toBe(1000);
    // A second file, then the compaction that merges the two runs in the bundled worker too.
    const more = Array.from({ length: 300 }, (_, i) => ({ op: 'insert', row: { id: 5000 + i, v: 'c' } }));
    last = await a.log.append('bundled', new TextEncoder().encode(JSON.stringify({ ops: more })));
    await fetch(`${url}/internal/tables/bundled/snapshot?minLsn=${last}`, { method: 'POST' });
    await fetch(`${url}/internal/tables/bundled/flush`, { method: 'POST' });
    let status: { compactions?: number; compactionsFailed?: number } = {};
    for (let i = 0; i < 300 && !status.compactions; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await (await fetch(`${url}/internal/tables/bundled/status`)).json()) as typeof status;
    }
    expect(status, output).toMatchObject({ compactions: 1, compactionsFailed: 0 });
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child?.once('exit', (c) => r(c)));
    expect(code, output).toBe(0);
    child = undefined;
    await a.log.close();
  }, 180_000);
});
