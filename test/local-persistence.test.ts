/**
 * `npm run local` keeps its state: the emulators (s3rver, dynalite, kinesalite) write under
 * MOONLINK_DATA_DIR/emulators, so after a SIGKILL of the whole process group (the service and
 * its emulator child) and a restart on the same folder, every acknowledged row is there once —
 * those committed to Iceberg (S3 + DynamoDB) and those only in the stream (Kinesis).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type ServiceProcess, startServiceProcess } from './support/service-process.ts';

const ENV = {
  MOONLINK_SNAPSHOT_INTERVAL_MS: '200',
  MOONLINK_COMMIT_INTERVAL_MS: '600000',
  MOONLINK_MAX_WAIT_MS: '30000',
};
let svc: ServiceProcess | undefined;
let dir: string | undefined;
afterAll(async () => {
  await svc?.kill('SIGKILL');
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function post(url: string, p: string, body: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(url + p, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

describe('npm run local', () => {
  it('keeps every acknowledged row across a SIGKILL of its process group and a restart', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mllocal-'));
    const env = { ...ENV, MOONLINK_DATA_DIR: dir };
    svc = await startServiceProcess(env, 90_000, { entry: 'local' });
    const created = await post(svc.url, '/tables', {
      name: 'kept',
      columns: [
        { name: 'id', type: 'long', nullable: false },
        { name: 'v', type: 'string' },
      ],
      primaryKey: ['id'],
    });
    expect(created.status).toBe(201);
    let lsn: unknown;
    const batch = async (b: number) => {
      const ops = Array.from({ length: 500 }, (_, i) => ({
        op: 'insert',
        row: { id: b * 500 + i, v: `r${b}` },
      }));
      const r = await post(svc!.url, '/tables/kept/rows', { ops });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      lsn = r.body.lsn;
    };
    for (let b = 0; b < 10; b++) await batch(b);
    // The first half committed to Iceberg; the second only in the stream when the process dies.
    expect((await post(svc.url, '/tables/kept/flush', {})).status).toBe(200);
    for (let b = 10; b < 20; b++) await batch(b);
    await svc.kill('SIGKILL');
    expect(await fs.readdir(path.join(dir, 'emulators'))).toEqual(
      expect.arrayContaining(['s3', 'dynamodb', 'kinesis']),
    );

    svc = await startServiceProcess(env, 90_000, { entry: 'local' });
    const r = await fetch(`${svc.url}/tables/kept/rows?minLsn=${lsn}&limit=100000`);
    const text = await r.text();
    expect(r.status, text.slice(0, 300)).toBe(200);
    const ids = (JSON.parse(text) as { rows: { id: number }[] }).rows.map((row) => Number(row.id));
    expect(ids.length).toBe(10_000);
    expect(new Set(ids).size).toBe(10_000);
    // And it keeps taking writes after the restart.
    await batch(20);
  }, 240_000);
});
