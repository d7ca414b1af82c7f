/**
 * The AWS shape against services that already run — as with LocalStack on :4566, here the
 * emulators started by the test on their own ports (LocalStack cannot run here: no Docker):
 * - `npm run local -- --s3-endpoint … --dynamodb-endpoint … --kinesis-endpoint …` (the same
 *   path as `--endpoint http://localhost:4566`): tables, writes and reads, and after a SIGKILL
 *   of the whole process group and a restart, every acknowledged row is there (the data lives
 *   in the outside services);
 * - the two programs of localstack/docker-compose.yml's `writer` and `api` services, as
 *   processes: the writer bundle (`npm run build:writer`, what the Dockerfile runs) and
 *   localstack/api-main.ts (the Lambda handlers behind the local HTTP adapter), configured only
 *   by environment variables.
 * Not covered: LocalStack itself (its edge port serving all three services), the containers.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseExactJson } from '../lib/schema/exact-json.ts';
import { type Emulators, startEmulators } from '../localstack/emulators.ts';
import { freePort, type ServiceProcess, startServiceProcess } from './support/service-process.ts';

let emu: Emulators;
let dir: string;
const procs: ServiceProcess[] = [];
beforeAll(async () => {
  emu = await startEmulators({ kinesisShards: 1 });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlendpoints-'));
}, 120_000);
afterAll(async () => {
  for (const p of procs) await p.kill().catch(() => undefined);
  await emu?.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

async function call(url: string, method: string, p: string, body?: unknown) {
  const r = await fetch(url + p, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? (parseExactJson(text) as any) : undefined };
}

async function roundTrip(url: string, table: string, ids: number[]): Promise<void> {
  const created = await call(url, 'POST', '/tables', {
    name: table,
    columns: [
      { name: 'id', type: 'long' },
      { name: 'v', type: 'string' },
    ],
    primaryKey: ['id'],
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const w = await call(url, 'POST', `/tables/${table}/rows?wait=visible`, {
    ops: ids.map((id) => ({ op: 'insert', row: { id, v: `v${id}` } })),
  });
  expect(w.status, JSON.stringify(w.body)).toBe(200);
  const r = await call(url, 'GET', `/tables/${table}/rows?minLsn=${w.body.lsn}`);
  expect((r.body.rows as { id: number }[]).map((x) => Number(x.id)).sort((a, b) => a - b)).toEqual(ids);
}

const env = () => ({
  AWS_REGION: 'us-east-1',
  MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
  LOG_LEVEL: 'WARN',
});

describe('the AWS shape on services that already run', () => {
  it('npm run local -- --s3-endpoint … keeps every row across a SIGKILL (the data is outside)', async () => {
    const args = [
      '--s3-endpoint',
      emu.s3.endpoint,
      '--dynamodb-endpoint',
      emu.dynamodb.endpoint,
      '--kinesis-endpoint',
      emu.kinesis.endpoint,
    ];
    const start = () =>
      startServiceProcess({ ...env(), MOONLINK_DATA_DIR: path.join(dir, 'local') }, 120_000, {
        entry: 'local',
        args,
      });
    let svc = await start();
    procs.push(svc);
    await roundTrip(svc.url, 'outside', [1, 2, 3]);
    await svc.kill('SIGKILL');
    svc = await start();
    procs.push(svc);
    const d = await call(svc.url, 'GET', '/tables/outside');
    expect(d.status).toBe(200);
    const r = await call(svc.url, 'GET', '/tables/outside/rows');
    expect((r.body.rows as unknown[]).length).toBe(3);
    // Half a set of endpoints is refused.
    await expect(
      startServiceProcess({ ...env(), MOONLINK_DATA_DIR: path.join(dir, 'half') }, 10_000, {
        entry: 'local',
        args: ['--s3-endpoint', emu.s3.endpoint],
      }),
    ).rejects.toThrow(/exited with 2/);
    await svc.kill();
  }, 240_000);

  it('the compose services as processes: the writer bundle and the API from the environment', async () => {
    const out = path.join(dir, 'bundle');
    await promisify(execFile)(process.execPath, ['infra/build-writer.mjs', out]);
    const writerPort = await freePort();
    const shared = {
      ...env(),
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      MOONLINK_BUCKET: emu.s3.bucket,
      MOONLINK_PREFIX: 'compose',
      MOONLINK_CATALOG_TABLE: emu.dynamodb.table,
      MOONLINK_STREAM: emu.kinesis.stream,
      MOONLINK_S3_ENDPOINT: emu.s3.endpoint,
      MOONLINK_DYNAMODB_ENDPOINT: emu.dynamodb.endpoint,
      MOONLINK_KINESIS_ENDPOINT: emu.kinesis.endpoint,
      MOONLINK_WRITER_URL_TEMPLATE: `http://127.0.0.1:${writerPort}`,
    };
    const { spawn } = await import('node:child_process');
    const writer = spawn(process.execPath, [path.join(out, 'writer-main.js')], {
      env: { PATH: process.env.PATH, ...shared, PORT: String(writerPort), HOST: '127.0.0.1' },
      stdio: 'ignore',
    });
    try {
      for (let i = 0; i < 300; i++) {
        if (
          await fetch(`http://127.0.0.1:${writerPort}/health/live`).then(
            (r) => r.ok,
            () => false,
          )
        )
          break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const api = await startServiceProcess(shared, 60_000, { entry: 'api' });
      procs.push(api);
      await roundTrip(api.url, 'composed', [7, 8, 9]);
      expect((await call(api.url, 'GET', '/health')).status).toBe(200);
      await api.kill();
    } finally {
      writer.kill('SIGTERM');
    }
  }, 240_000);
});
