/**
 * Imports (`POST /tables/{name}/imports`), against the service as a process — `npm start`, and
 * `npm run local` (the AWS shape: the tables function asks the writer over its internal API,
 * the commit marker goes through Kinesis). Proven here:
 * - every format (Parquet, Arrow IPC, CSV, NDJSON), globs over many files and folders, upserts;
 *   the rows equal what the files hold, exactly once; progress in `GET …/imports/{id}`;
 * - a bad value in the last file fails the import with the file and row named, and nothing of
 *   it is visible; bad requests (no files, a path outside MOONLINK_IMPORT_ROOTS, a bad body) are
 *   4xx at once;
 * - a SIGKILL of the whole service mid-import: nothing visible after the restart until the
 *   import, run again, commits; then every row exactly once;
 * - an import whose commit reached Iceberg but whose record was not updated (a crash between
 *   the two, made here by rewriting the record) is found committed after a restart, not re-run.
 * s3:// sources are listed and read against s3rver in import-source.test.ts.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as arrow from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeParquet } from '../lib/parquet/parquet-codec.mjs';
import { parseExactJson } from '../lib/schema/exact-json.ts';
import { type ServiceProcess, startServiceProcess } from './support/service-process.ts';

const dirs: string[] = [];
const procs: ServiceProcess[] = [];
afterAll(async () => {
  for (const p of procs) await p.kill().catch(() => undefined);
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

const show = (v: unknown): string => JSON.stringify(v);

function arrowTable(from: number, n: number, tag: string): arrow.Table {
  const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(from + i));
  return arrow.tableFromArrays({ id: ids, v: Array.from({ length: n }, (_, i) => `${tag}${from + i}`) });
}

for (const entry of ['start', 'local'] as const) {
  describe(`imports (${entry === 'start' ? 'npm start' : 'npm run local'})`, () => {
    let svc: ServiceProcess;
    let dir: string;
    let files: string;
    const start = async () => {
      svc = await startServiceProcess(
        {
          MOONLINK_DATA_DIR: path.join(dir, 'data'),
          MOONLINK_IMPORT_ROOTS: files,
          LOG_LEVEL: 'ERROR',
          MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
        },
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
    const rows = async (table: string): Promise<{ id: number; v: string }[]> => {
      const r = await call('GET', `/tables/${table}/rows?limit=100000`);
      expect(r.status, show(r.body)).toBe(200);
      return (r.body.rows as { id: number; v: string }[])
        .map((x) => ({ id: Number(x.id), v: x.v }))
        .sort((a, b) => a.id - b.id);
    };
    const settle = async (table: string, id: string, timeoutMs = 60_000) => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const r = await call('GET', `/tables/${table}/imports/${id}`);
        expect(r.status, show(r.body)).toBe(200);
        if (r.body.state === 'committed' || r.body.state === 'failed') return r.body;
        if (Date.now() > until) throw new Error(`import not done: ${show(r.body)}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    const create = async (name: string) => {
      const r = await call('POST', '/tables', {
        name,
        columns: [
          { name: 'id', type: 'long' },
          { name: 'v', type: 'string' },
        ],
        primaryKey: ['id'],
      });
      expect(r.status, show(r.body)).toBe(201);
    };

    it('imports every format, globs and folders, all or nothing, restart-safe', async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), `mlimport-${entry}-`));
      dirs.push(dir);
      files = path.join(dir, 'files');
      await fs.mkdir(path.join(files, 'mixed', 'day=2'), { recursive: true });
      // 0-99 Parquet, 100-199 Arrow, 200-299 CSV, 300-399 NDJSON (bare rows), a marker file skipped.
      await fs.writeFile(
        path.join(files, 'mixed', 'a.parquet'),
        encodeParquet(arrow.tableToIPC(arrowTable(0, 100, 'p'), 'stream')),
      );
      await fs.writeFile(
        path.join(files, 'mixed', 'b.arrow'),
        arrow.tableToIPC(arrowTable(100, 100, 'a'), 'file'),
      );
      const csv = ['id,v', ...Array.from({ length: 100 }, (_, i) => `${200 + i},"c,${200 + i}"`)].join('\n');
      await fs.writeFile(path.join(files, 'mixed', 'day=2', 'c.csv'), csv);
      const ndjson = Array.from({ length: 100 }, (_, i) => JSON.stringify({ id: 300 + i, v: `n${300 + i}` }));
      await fs.writeFile(path.join(files, 'mixed', 'day=2', 'd.ndjson'), ndjson.join('\n'));
      await fs.writeFile(path.join(files, 'mixed', '_SUCCESS'), '');
      await start();
      await create('t');

      const started = await call('POST', '/tables/t/imports', { uri: `file://${files}/mixed/` });
      expect(started.status, show(started.body)).toBe(202);
      expect(started.body).toMatchObject({ table: 't', state: 'queued', files: 4 });
      const done = await settle('t', started.body.id);
      expect(done, show(done)).toMatchObject({ state: 'committed', files: 4, filesDone: 4, rows: 400 });
      expect(done.metadataLocation).toMatch(/metadata\/v\d+\.metadata\.json$/);
      const all = await rows('t');
      expect(all.map((r) => r.id)).toEqual(Array.from({ length: 400 }, (_, i) => i));
      expect(all[0].v).toBe('p0');
      expect(all[150].v).toBe('a150');
      expect(all[250].v).toBe('c,250');
      expect(all[350].v).toBe('n350');

      // A glob, as upserts: the CSV rows replace theirs.
      await fs.writeFile(path.join(files, 'mixed', 'day=2', 'e.csv'), 'id,v\n200,changed\n999,new\n');
      const up = await call('POST', '/tables/t/imports', {
        uri: `file://${files}/mixed/**/e.csv`,
        op: 'upsert',
      });
      expect(up.status, show(up.body)).toBe(202);
      expect((await settle('t', up.body.id)).state).toBe('committed');
      const after = await rows('t');
      expect(after).toHaveLength(401);
      expect(after.find((r) => r.id === 200)?.v).toBe('changed');

      // A bad value in the last file: failed, the file and row named, nothing visible.
      await fs.mkdir(path.join(files, 'bad'));
      await fs.writeFile(path.join(files, 'bad', '1.ndjson'), '{"id":5000,"v":"ok"}\n');
      await fs.writeFile(path.join(files, 'bad', '2.ndjson'), '{"id":5001,"v":"ok"}\n{"id":"x","v":"bad"}\n');
      const bad = await call('POST', '/tables/t/imports', { uri: `file://${files}/bad/*.ndjson` });
      expect(bad.status).toBe(202);
      const failed = await settle('t', bad.body.id);
      expect(failed.state).toBe('failed');
      expect(failed.error.message).toMatch(/2\.ndjson \(row 2\)/);
      expect(await rows('t')).toEqual(after);

      // Refused at once: nothing there, outside the allowed folders, a bad body, no table.
      expect((await call('POST', '/tables/t/imports', { uri: `file://${files}/none/*.csv` })).status).toBe(
        400,
      );
      const outside = await call('POST', '/tables/t/imports', { uri: 'file:///etc/passwd', format: 'csv' });
      expect(outside.status).toBe(400);
      expect(outside.body.error.message).toMatch(/MOONLINK_IMPORT_ROOTS/);
      expect((await call('POST', '/tables/t/imports', { uri: 'ftp://x/y' })).status).toBe(400);
      expect((await call('POST', '/tables/t/imports', { uri: 'x', format: 'xml' })).status).toBe(400);
      expect((await call('POST', '/tables/nope/imports', { uri: `file://${files}/mixed/` })).status).toBe(
        404,
      );
      expect((await call('GET', '/tables/t/imports/imp_000000000000000000000000')).status).toBe(404);

      // SIGKILL mid-import: a big one, killed while it runs.
      await fs.mkdir(path.join(files, 'big'));
      for (let f = 0; f < 30; f++) {
        const lines = ['id,v'];
        for (let i = 0; i < 20_000; i++) lines.push(`${100_000 + f * 20_000 + i},b`);
        await fs.writeFile(
          path.join(files, 'big', `part-${String(f).padStart(3, '0')}.csv`),
          lines.join('\n'),
        );
      }
      await create('big');
      const bigStart = await call('POST', '/tables/big/imports', { uri: `file://${files}/big/` });
      expect(bigStart.status).toBe(202);
      const id = bigStart.body.id as string;
      for (let i = 0; i < 600; i++) {
        const r = await call('GET', `/tables/big/imports/${id}`);
        if (r.body.filesDone >= 2 || r.body.state === 'committed') break;
        await new Promise((res) => setTimeout(res, 20));
      }
      const during = await call('GET', `/tables/big/imports/${id}`);
      // Killed while it runs (30 files take seconds), and nothing of it is visible.
      expect(during.body.state, show(during.body)).toBe('running');
      expect(await rows('big')).toEqual([]);
      await svc.kill('SIGKILL');
      await start();
      const resumed = await settle('big', id, 120_000);
      expect(resumed.state, show(resumed)).toBe('committed');
      const big = await call('GET', '/tables/big');
      expect(big.body.rows).toBe(600_000);
      expect(resumed.attempt).toBe(2);

      // Committed before a crash, the record not updated: found committed, not run again.
      const recordFile = path.join(dir, 'data', ...(entry === 'start' ? ['objects'] : ['s3']), 'imports');
      if (entry === 'start') {
        // The newest version of the record, then one newer that says "committing".
        const folder = path.join(recordFile, started.body.id);
        const newest = (await fs.readdir(folder)).sort().at(-1)!;
        const rec = JSON.parse(await fs.readFile(path.join(folder, newest), 'utf8'));
        const next = String(rec.version + 1).padStart(10, '0');
        await fs.writeFile(
          path.join(folder, `${next}.json`),
          JSON.stringify({ ...rec, version: rec.version + 1, state: 'committing', lsn: undefined }),
        );
        // A torn newest version (a store whose puts are not atomic, killed mid-write) is passed over.
        await fs.writeFile(
          path.join(folder, `${String(rec.version + 2).padStart(10, '0')}.json`),
          '{"id":"imp_',
        );
        await svc.kill('SIGKILL');
        await start();
        const again = await settle('t', started.body.id);
        expect(again.state).toBe('committed');
        expect(again.attempt).toBe(1);
        expect(await rows('t')).toEqual(after);
      }
    }, 300_000);
  });
}
