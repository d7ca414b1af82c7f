/**
 * Renaming a table (`POST /tables/{name}/rename`), against the service as a process — `npm
 * start` and the AWS shape on emulators (`npm run local`: DynamoDB catalog with its sealed,
 * resumable rename; Kinesis log with barrier records). Proven here:
 * - nothing acknowledged is lost or doubled: eight clients write while the rename happens,
 *   and every write answered 200 is in the renamed table exactly once (the others were refused);
 * - the table keeps its data files, history and location; the old name is free at once, and a
 *   new table of that name gets its own location, so dropping either never touches the other;
 * - after a SIGKILL of the whole service and a restart, the renamed table has everything and
 *   takes new writes (its log numbers them after its last commit);
 * - refusals: a taken name (409), an invalid name (400), a missing table (404).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
  describe(`table rename (${entry === 'start' ? 'npm start' : 'npm run local'})`, () => {
    let svc: ServiceProcess;
    let dir: string;
    const start = async () => {
      svc = await startServiceProcess(
        { MOONLINK_DATA_DIR: dir, LOG_LEVEL: 'ERROR', MOONLINK_SNAPSHOT_INTERVAL_MS: '100' },
        120_000,
        { entry },
      );
      procs.push(svc);
    };
    const call = async (method: string, p: string, body?: unknown) => {
      const res = await fetch(svc.url + p, {
        method,
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? (parseExactJson(text) as any) : undefined };
    };
    const ids = async (table: string): Promise<number[]> => {
      const f = await call('POST', `/tables/${table}/flush`);
      expect(f.status, show(f.body)).toBe(200);
      const r = await call('GET', `/tables/${table}/rows?minLsn=${f.body.lsn}&limit=100000`);
      expect(r.status, show(r.body)).toBe(200);
      return (r.body.rows as { id: number }[]).map((x) => Number(x.id)).sort((a, b) => a - b);
    };
    const rows = (from: number, n: number, v = 'a') =>
      Array.from({ length: n }, (_, i) => ({ id: from + i, v: `${v}${from + i}` }));

    it('keeps every acknowledged write across a rename under load, a SIGKILL and a restart', async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), `mlrename-${entry}-`));
      dirs.push(dir);
      await start();
      const columns = [
        { name: 'id', type: 'long' },
        { name: 'v', type: 'string' },
      ];
      expect((await call('POST', '/tables', { name: 'orders', columns, primaryKey: ['id'] })).status).toBe(
        201,
      );
      expect(
        (
          await call('POST', '/tables/orders/rows', {
            ops: rows(1, 100).map((row) => ({ op: 'insert', row })),
          })
        ).status,
      ).toBe(200);
      await call('POST', '/tables/orders/rows', {
        ops: [
          { op: 'delete', row: { id: 1 } },
          { op: 'upsert', row: { id: 2, v: 'changed' } },
        ],
      });
      const before = await call('GET', '/tables/orders');
      const oldLocation = before.body.metadataLocation as string;
      expect(oldLocation).toMatch(/tables\/orders\/metadata\//);

      // Eight clients write unique ids while the table is renamed.
      const acked: number[] = [];
      const refused: Record<number, number> = {};
      let stop = false;
      let next = 10_000;
      const client = async () => {
        while (!stop) {
          const id = next++;
          const r = await call('POST', '/tables/orders/rows', {
            ops: [{ op: 'insert', row: { id, v: 'load' } }],
          });
          if (r.status === 200) acked.push(id);
          else refused[r.status] = (refused[r.status] ?? 0) + 1;
          if (r.status !== 200 && r.status !== 404 && r.status !== 503) throw new Error(show(r));
        }
      };
      const clients = Array.from({ length: 8 }, client);
      await new Promise((r) => setTimeout(r, 300));
      const renamed = await call('POST', '/tables/orders/rename', { name: 'sales.orders' });
      expect(renamed.status, show(renamed.body)).toBe(200);
      expect(renamed.body).toMatchObject({ name: 'sales.orders', renamedFrom: 'orders' });
      await new Promise((r) => setTimeout(r, 300));
      stop = true;
      await Promise.all(clients);
      expect(acked.length).toBeGreaterThan(0);
      // After the rename the old name is gone (404), during it refused (503).
      expect(refused[404] ?? 0).toBeGreaterThan(0);

      expect((await call('GET', '/tables/orders')).status).toBe(404);
      const described = await call('GET', '/tables/sales.orders');
      expect(described.status).toBe(200);
      // The same objects: the renamed table's metadata lives where it always did.
      expect(described.body.metadataLocation).toMatch(/tables\/orders\/metadata\//);
      const expected = [...rows(2, 99).map((r) => r.id), ...acked].sort((a, b) => a - b);
      expect(await ids('sales.orders')).toEqual(expected);

      // The renamed table takes writes; a new table of the old name has its own place.
      await call('POST', '/tables/sales.orders/rows', {
        ops: [
          { op: 'upsert', row: { id: 2, v: 'again' } },
          { op: 'insert', row: { id: 5000, v: 'new' } },
        ],
      });
      expect((await call('POST', '/tables', { name: 'orders', columns, primaryKey: ['id'] })).status).toBe(
        201,
      );
      await call('POST', '/tables/orders/rows', {
        ops: rows(1, 3, 'fresh').map((row) => ({ op: 'insert', row })),
      });
      expect(await ids('orders')).toEqual([1, 2, 3]);
      const fresh = await call('GET', '/tables/orders');
      expect(fresh.body.metadataLocation).not.toMatch(/tables\/orders\/metadata\//);
      expect(fresh.body.metadataLocation).toMatch(/tables\/orders-[0-9a-f]{12}\/metadata\//);

      // Refusals.
      expect((await call('POST', '/tables/sales.orders/rename', { name: 'orders' })).status).toBe(409);
      expect((await call('POST', '/tables/sales.orders/rename', { name: '1bad' })).status).toBe(400);
      expect((await call('POST', '/tables/sales.orders/rename', {})).status).toBe(400);
      expect((await call('POST', '/tables/nothere/rename', { name: 'x' })).status).toBe(404);

      // SIGKILL of the whole service, then a restart: everything is there, new writes land.
      await svc.kill('SIGKILL');
      await start();
      const withNew = [...expected.filter((id) => id < 5000), 5000, ...expected.filter((id) => id > 5000)];
      expect(await ids('sales.orders')).toEqual(withNew);
      const afterRestart = await call('POST', '/tables/sales.orders/rows', {
        ops: [{ op: 'insert', row: { id: 6000, v: 'late' } }],
      });
      expect(afterRestart.status, show(afterRestart.body)).toBe(200);
      expect((await ids('sales.orders')).includes(6000)).toBe(true);
      const scan = await call(
        'GET',
        `/tables/sales.orders/rows?minLsn=${afterRestart.body.lsn}&limit=100000`,
      );
      expect((scan.body.rows as { id: number; v: string }[]).find((r) => Number(r.id) === 2)?.v).toBe(
        'again',
      );

      // Dropping the renamed table (and its objects) leaves the new "orders" whole.
      expect((await call('DELETE', '/tables/sales.orders')).status).toBe(204);
      expect(await ids('orders')).toEqual([1, 2, 3]);
    }, 240_000);
  });
}
