/**
 * Idempotent writes (`Idempotency-Key`), against the service as a process — `npm start` and the
 * AWS shape on emulators (`npm run local`, where writes go through Kinesis and the writer's
 * internal API): a retry answers the original `{lsn, count}` and applies nothing, also when the
 * copies race, after a SIGKILL of the whole service and restart (the key only in the log), and
 * after a commit (the key in the committed idempotency object); the same key with another body
 * is a 422. JSON, NDJSON and Arrow bodies.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as arrow from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { parseExactJson } from '../lib/schema/exact-json.ts';
import { type ServiceProcess, startServiceProcess } from './support/service-process.ts';

const dirs: string[] = [];
const procs: ServiceProcess[] = [];
afterAll(async () => {
  for (const p of procs) await p.kill().catch(() => undefined);
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

const show = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));

for (const entry of ['start', 'local'] as const) {
  describe(`Idempotency-Key (${entry === 'start' ? 'npm start' : 'npm run local'})`, () => {
    let dir: string;
    let svc: ServiceProcess;
    const start = async () => {
      svc = await startServiceProcess(
        {
          MOONLINK_DATA_DIR: dir,
          LOG_LEVEL: 'ERROR',
          MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
          MOONLINK_COMMIT_INTERVAL_MS: '600000',
        },
        120_000,
        { entry },
      );
      procs.push(svc);
    };
    const call = async (
      method: string,
      p: string,
      body?: string | Uint8Array,
      headers: Record<string, string> = {},
    ) => {
      const res = await fetch(svc.url + p, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        body: body as string | undefined,
      });
      const text = await res.text();
      return {
        status: res.status,
        headers: res.headers,
        body: text ? (parseExactJson(text) as any) : undefined,
      };
    };
    const write = (body: string | Uint8Array, key: string, type = 'application/json') =>
      call('POST', '/tables/t/rows', body, { 'idempotency-key': key, 'content-type': type });
    const count = async () => {
      const f = await call('POST', '/tables/t/flush');
      expect(f.status, show(f.body)).toBe(200);
      const r = await call('GET', `/tables/t/rows?minLsn=${f.body.lsn}&limit=100000`);
      return (r.body.rows as unknown[]).length;
    };

    it('answers a retry with the original and applies it once, across racing copies, a SIGKILL and a commit', async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), `mlidem-${entry}-`));
      dirs.push(dir);
      await start();
      const created = await call(
        'POST',
        '/tables',
        JSON.stringify({
          name: 't',
          columns: [
            { name: 'id', type: 'long' },
            { name: 'v', type: 'string' },
          ],
          primaryKey: ['id'],
        }),
      );
      expect(created.status, show(created.body)).toBe(201);
      const body = (from: number, n: number) =>
        JSON.stringify({
          ops: Array.from({ length: n }, (_, i) => ({
            op: 'insert',
            row: { id: from + i, v: `v${from + i}` },
          })),
        });

      const first = await write(body(0, 10), 'batch-1');
      expect(first.status, show(first.body)).toBe(200);
      const again = await write(body(0, 10), 'batch-1');
      expect(again.status).toBe(200);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(show(again.body)).toBe(show(first.body));
      const other = await write(body(100, 3), 'batch-1');
      expect(other.status).toBe(422);
      expect(other.body.error.code).toBe('idempotency_key_reused');

      // Copies racing into the log: every answer names the first, and the rows are there once.
      const racing = await Promise.all(Array.from({ length: 6 }, () => write(body(10, 10), 'batch-2')));
      expect(racing.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
      expect(new Set(racing.map((r) => show(r.body.lsn))).size).toBe(1);

      // NDJSON and Arrow bodies (Arrow goes through the log as bytes: base64 on Kinesis).
      const nd = '{"op":"insert","row":{"id":20,"v":"n"}}\n{"op":"insert","row":{"id":21,"v":"n"}}';
      const ndFirst = await write(nd, 'batch-3', 'application/x-ndjson');
      expect(ndFirst.status, show(ndFirst.body)).toBe(200);
      const ipc = arrow.tableToIPC(
        new arrow.Table({
          id: arrow.vectorFromArray([30n, 31n, 32n], new arrow.Int64()),
          v: arrow.vectorFromArray(['a', 'b', 'c'], new arrow.Utf8()),
        }),
        'stream',
      );
      const arrowFirst = await write(ipc, 'batch-4', 'application/vnd.apache.arrow.stream');
      expect(arrowFirst.status, show(arrowFirst.body)).toBe(200);
      expect(show((await write(ipc, 'batch-4', 'application/vnd.apache.arrow.stream')).body)).toBe(
        show(arrowFirst.body),
      );
      expect(await count()).toBe(25);

      // Keys only in the log (written after the last commit), then SIGKILL of the whole service.
      const late = await write(body(40, 5), 'batch-5');
      expect(late.status).toBe(200);
      await svc.kill('SIGKILL');
      await start();
      const afterKill = await write(body(40, 5), 'batch-5');
      expect(afterKill.status, show(afterKill.body)).toBe(200);
      expect(show(afterKill.body)).toBe(show(late.body));
      expect(show((await write(body(0, 10), 'batch-1')).body)).toBe(show(first.body));
      expect(show((await write(ipc, 'batch-4', 'application/vnd.apache.arrow.stream')).body)).toBe(
        show(arrowFirst.body),
      );
      expect(await count()).toBe(30);

      // Committed (count() flushed): the keys are in the commit's idempotency object.
      await svc.kill('SIGKILL');
      await start();
      expect(show((await write(body(40, 5), 'batch-5')).body)).toBe(show(late.body));
      expect(show((await write(nd, 'batch-3', 'application/x-ndjson')).body)).toBe(show(ndFirst.body));
      expect((await write(nd, 'batch-3')).status).toBe(422); // same bytes, another content type
      expect(await count()).toBe(30);
      expect((await write(body(50, 1), 'bad key with spaces')).status).toBe(400);
    }, 240_000);
  });
}
