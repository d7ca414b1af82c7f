/**
 * The `moonlink` command as a child process (bin/moonlink.mjs), against the embedded service:
 * load from CSV, NDJSON, Parquet and Arrow files (with --create), scan to NDJSON, CSV and
 * Parquet, flush, errors with the server's message and exit status 1, usage errors with 2; a
 * progress bar under a pseudo-terminal (`script`), plain lines otherwise. Against a small fake
 * server: refusals (503 with Retry-After) are retried, a bearer token and SigV4 (`--aws`) are
 * sent.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as arrow from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceConfigFromEnv } from '../lib/config.ts';
import { type EmbeddedService, startEmbedded } from '../lib/embedded/embedded-service.ts';
import { encodeParquet } from '../lib/parquet/parquet-codec.mjs';
import { silentLogger } from '../lib/util/logger.ts';

const run = promisify(execFile);
const BIN = path.resolve('bin/moonlink.mjs');
let dir: string;
let svc: EmbeddedService;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlcli-'));
  svc = await startEmbedded(
    serviceConfigFromEnv({
      PORT: '0',
      MOONLINK_DATA_DIR: path.join(dir, 'data'),
      MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
      MOONLINK_IMPORT_ROOTS: dir,
    }),
    silentLogger,
  );
});
afterAll(async () => {
  await svc?.close({ flush: false });
  await fs.rm(dir, { recursive: true, force: true });
});

async function cli(args: string[], env: Record<string, string> = {}) {
  try {
    const r = await run(process.execPath, [BIN, ...args], {
      env: { ...process.env, MOONLINK_URL: svc.url, ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

async function scanIds(table: string): Promise<string[]> {
  const r = await cli(['scan', table]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.stringify(JSON.parse(l)))
    .sort();
}

describe('moonlink CLI', () => {
  it('loads CSV with --create --schema, in batches, and scans it back as NDJSON and CSV', async () => {
    const csv = [
      'id,name,score',
      ...Array.from({ length: 2500 }, (_, i) => `${i},"n,${i}",${i % 3 === 0 ? '' : i / 2}`),
    ].join('\n');
    await fs.writeFile(path.join(dir, 'a.csv'), csv);
    const r = await cli([
      'load',
      path.join(dir, 'a.csv'),
      '--table',
      'csv_t',
      '--create',
      '--schema',
      'id:long,name:string?,score:double?',
      '--key',
      'id',
      '--batch-rows',
      '1000',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/loaded 2500 rows in 3 batches from 1 file\(s\)/);
    // Not a terminal: plain progress lines, no bar.
    expect(r.stderr.includes('\u001b[')).toBe(false);
    const rows = await scanIds('csv_t');
    expect(rows).toHaveLength(2500);
    expect(rows).toContain(JSON.stringify({ id: 7, name: 'n,7', score: 3.5 }));
    expect(rows).toContain(JSON.stringify({ id: 9, name: 'n,9', score: null }));
    const asCsv = await cli(['scan', 'csv_t', '--format', 'csv', '--limit', '5']);
    expect(asCsv.code).toBe(0);
    const lines = asCsv.stdout.trim().split('\n');
    expect(lines[0]).toBe('id,name,score');
    expect(lines).toHaveLength(6);
    expect((await cli(['tables'])).stdout).toMatch(/^csv_t\t3 columns\tkey: id$/m);
    expect(JSON.parse((await cli(['describe', 'csv_t'])).stdout).primaryKey).toEqual(['id']);
    expect((await cli(['flush', 'csv_t'])).stdout).toMatch(/committed through LSN \d+: file:/);
    const renamed = await cli(['rename', 'csv_t', 'csv_renamed']);
    expect(renamed.stdout).toMatch(
      /^renamed csv_t to csv_renamed \(its files stay at file:.*tables\/csv_t\/metadata\//,
    );
    expect((await cli(['tables'])).stdout).toMatch(/^csv_renamed\t3 columns/m);
    const taken = await cli(['rename', 'csv_renamed', 'csv_renamed']);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/already exists/);
    expect((await cli(['rename', 'csv_renamed'])).code).toBe(2);
    expect((await cli(['rename', 'csv_renamed', 'csv_t'])).code).toBe(0);
    // alter: one schema change from flags, all or nothing.
    const altered = await cli([
      'alter',
      'csv_t',
      '--add',
      'note:string',
      '--rename',
      'name=label',
      '--add',
      'tags:list<string>',
    ]);
    expect(altered.code, altered.stderr).toBe(0);
    expect(altered.stdout).toMatch(/^csv_t: schema 1 at LSN \d+/);
    expect(altered.stdout).toMatch(/^ {2}label\tstring$/m);
    expect(altered.stdout).toMatch(/^ {2}tags\tlist<string>$/m);
    const bad = await cli(['alter', 'csv_t', '--add', 'x:string', '--drop', 'id']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/changes\[0\]: column "id" is in the primary key/);
    expect(JSON.parse((await cli(['describe', 'csv_t'])).stdout).schemaId).toBe(1);
    expect((await cli(['alter', 'csv_t'])).code).toBe(2);
    expect((await cli(['alter', 'csv_t', '--add', 'nocolon'])).code).toBe(2);
    // Back to the columns the tests below load (drops first, then renames).
    const back = await cli(['alter', 'csv_t', '--rename', 'label=name', '--drop', 'note', '--drop', 'tags']);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toMatch(/^csv_t: schema 2 at LSN/);
  });

  it('loads NDJSON operations and bare rows (--op upsert)', async () => {
    expect(
      (
        await cli([
          'load',
          path.join(dir, 'a.csv'),
          '--table',
          'nd',
          '--create',
          '--schema',
          'id:long,v:string?',
          '--key',
          'id',
          '--format',
          'csv',
        ])
      ).code,
    ).toBe(1); // name/score are not columns of nd
    const ops = `${JSON.stringify({ op: 'insert', row: { id: 1, v: 'a' } })}\n${JSON.stringify({ op: 'insert', row: { id: 2, v: 'b' } })}\n`;
    await fs.writeFile(path.join(dir, 'ops.ndjson'), ops);
    expect((await cli(['load', path.join(dir, 'ops.ndjson'), '--table', 'nd'])).code).toBe(0);
    await fs.writeFile(path.join(dir, 'bare.jsonl'), '{"id":2,"v":"B"}\n{"id":3,"v":"c"}\n');
    const r = await cli(['load', path.join(dir, 'bare.jsonl'), '--table', 'nd', '--op', 'upsert']);
    expect(r.code, r.stderr).toBe(0);
    expect(await scanIds('nd')).toEqual(
      [
        { id: 1, v: 'a' },
        { id: 2, v: 'B' },
        { id: 3, v: 'c' },
      ]
        .map((x) => JSON.stringify(x))
        .sort(),
    );
  });

  it('creates a partitioned, sorted table, scans with a filter, and changes its partitioning', async () => {
    const rows = Array.from({ length: 30 }, (_, i) =>
      JSON.stringify({ id: i, at: `2024-05-0${1 + (i % 3)}T08:00:00Z` }),
    );
    await fs.writeFile(path.join(dir, 'events.jsonl'), `${rows.join('\n')}\n`);
    const created = await cli([
      'load',
      path.join(dir, 'events.jsonl'),
      '--table',
      'ev',
      '--create',
      '--schema',
      'id:long,at:timestamptz',
      '--key',
      'id',
      '--partition-by',
      'day(at),bucket[4](id)',
      '--sort-by',
      'at desc,id',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const d = JSON.parse((await cli(['describe', 'ev'])).stdout);
    expect(d.partitionBy.map((p: { name: string }) => p.name)).toEqual(['at_day', 'id_bucket']);
    expect(d.sortBy).toEqual([
      { column: 'at', direction: 'desc', nulls: 'last' },
      { column: 'id', direction: 'asc', nulls: 'first' },
    ]);
    expect((await cli(['flush', 'ev'])).code).toBe(0);
    const scanned = await cli(['scan', 'ev', '--filter', 'at>=2024-05-03T00:00:00Z']);
    expect(scanned.code, scanned.stderr).toBe(0);
    expect(scanned.stdout.trim().split('\n')).toHaveLength(10);
    expect(scanned.stderr).toMatch(/10 rows \(\d+ files skipped by partition\)/);
    const altered = await cli(['alter', 'ev', '--partition-by', 'month(at)']);
    expect(altered.code, altered.stderr).toBe(0);
    expect(altered.stdout).toMatch(/^ev: schema 0, partition spec 1\n {2}at_month\tmonth\(at\)$/m);
    const both = await cli(['alter', 'ev', '--add', 'region:string', '--partition-by', 'month(at),region']);
    expect(both.code, both.stderr).toBe(0);
    expect(both.stdout).toMatch(
      /^ev: schema 1, partition spec 2\n {2}at_month\tmonth\(at\)\n {2}region\tidentity\(region\)$/m,
    );
    expect((await cli(['alter', 'ev', '--partition-by', 'month at'])).code).toBe(2);
  });

  it('round-trips through Parquet and Arrow files (scan --format parquet, load --create from the file)', async () => {
    const pq = path.join(dir, 'out.parquet');
    const s = await cli(['scan', 'csv_t', '--format', 'parquet', '--out', pq]);
    expect(s.code, s.stderr).toBe(0);
    const l = await cli(['load', pq, '--table', 'from_pq', '--create', '--key', 'id', '--batch-rows', '700']);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stderr).toMatch(/loaded 2500 rows in 4 batches/);
    expect(await scanIds('from_pq')).toEqual(await scanIds('csv_t'));

    const table = new arrow.Table({
      id: arrow.vectorFromArray([10n, 11n], new arrow.Int64()),
      tag: arrow.vectorFromArray(['x', null], new arrow.Utf8()),
    });
    await fs.writeFile(path.join(dir, 't.arrow'), arrow.tableToIPC(table, 'file'));
    const a = await cli(['load', path.join(dir, 't.arrow'), '--table', 'from_arrow', '--create']);
    expect(a.code, a.stderr).toBe(0);
    expect(await scanIds('from_arrow')).toEqual([
      JSON.stringify({ id: 10, tag: 'x' }),
      JSON.stringify({ id: 11, tag: null }),
    ]);
    // A Parquet file written by someone else (parquet-wasm from an Arrow table).
    await fs.writeFile(path.join(dir, 'other.parquet'), encodeParquet(arrow.tableToIPC(table, 'stream')));
    expect((await cli(['load', path.join(dir, 'other.parquet'), '--table', 'from_arrow'])).code).toBe(0);
    expect(await scanIds('from_arrow')).toHaveLength(4);
  });

  it('fails with the server message and status 1, resumes with --skip-rows; usage errors are status 2', async () => {
    await fs.writeFile(
      path.join(dir, 'bad.ndjson'),
      '{"id":20,"v":"ok"}\n{"id":21,"v":"ok"}\n{"id":22,"nope":1}\n',
    );
    const r = await cli(['load', path.join(dir, 'bad.ndjson'), '--table', 'nd', '--batch-rows', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /batch 2 \(rows 2–2\).*400 invalid_request: ops\[0\]\.row\.nope: unknown column/s,
    );
    expect(r.stderr).toMatch(/rerun the same command .* or use --skip-rows 2/);
    expect(await scanIds('nd')).toHaveLength(5); // the first batch landed, the bad one did not
    await fs.writeFile(
      path.join(dir, 'bad.ndjson'),
      '{"id":20,"v":"ok"}\n{"id":21,"v":"ok"}\n{"id":22,"v":"fixed"}\n',
    );
    const resumed = await cli([
      'load',
      path.join(dir, 'bad.ndjson'),
      '--table',
      'nd',
      '--batch-rows',
      '2',
      '--skip-rows',
      '2',
    ]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/loaded 1 rows in 1 batches.*2 skipped/);
    expect(await scanIds('nd')).toHaveLength(6);
    // A rerun of a whole load never doubles: every batch is recognized by its key.
    const rerun = await cli(['load', path.join(dir, 'ops.ndjson'), '--table', 'nd']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toMatch(/1 batches already applied before \(not applied again\)/);
    expect(await scanIds('nd')).toHaveLength(6);
    expect((await cli(['load', path.join(dir, 'bad.ndjson')])).code).toBe(2);
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['describe', 'missing'])).stderr).toMatch(/404 not_found: table "missing" not found/);
  });

  it('imports files on the server (moonlink import) and follows its progress; a failure is status 1', async () => {
    await fs.mkdir(path.join(dir, 'imp'));
    for (let f = 0; f < 3; f++)
      await fs.writeFile(
        path.join(dir, 'imp', `${f}.ndjson`),
        Array.from({ length: 500 }, (_, i) => JSON.stringify({ id: 10_000 + f * 500 + i, name: 'imp' })).join(
          '\n',
        ),
      );
    const before = (await scanIds('csv_t')).length;
    const r = await cli(['import', 'csv_t', `file://${dir}/imp/*.ndjson`, '--op', 'upsert']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/import imp_[0-9a-f]{24}: 3 file\(s\)/);
    expect(r.stdout).toMatch(/^imported 1500 rows from 3 file\(s\) in [\d.]+ s, committed at LSN \d+: file:/);
    expect((await scanIds('csv_t')).length).toBe(before + 1500);
    await fs.writeFile(path.join(dir, 'imp', 'bad.ndjson'), '{"id":"nope"}');
    const bad = await cli(['import', 'csv_t', `file://${dir}/imp/bad.ndjson`]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/failed, nothing of it applied: .*bad\.ndjson \(row 1\)/);
    const queued = await cli(['import', 'csv_t', `file://${dir}/imp/0.ndjson`, '--no-wait']);
    expect(queued.stdout.trim()).toMatch(/^imp_[0-9a-f]{24}$/);
    expect((await cli(['import', 'csv_t'])).code).toBe(2);
  });

  it('draws a progress bar on a terminal', async () => {
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} load ${JSON.stringify(path.join(dir, 'a.csv'))} --table csv_t --op upsert --batch-rows 100`;
    // Not spawnSync: the service answering the CLI runs in this process.
    const r = await run('script', ['-qec', cmd, '/dev/null'], {
      env: { ...process.env, MOONLINK_URL: svc.url, TERM: 'xterm' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stdout).toMatch(/100% \| 2500 rows \| [\d.]+ of [\d.]+ MB \| \d+ rows\/s \| ETA/);
    expect(r.stdout).toMatch(/loaded 2500 rows in 25 batches/);
  });

  it('retries refusals after Retry-After and signs requests (bearer token, SigV4 with --aws)', async () => {
    const seen: { url: string; auth: string | undefined; date: string | undefined }[] = [];
    let refusals = 2;
    const fake = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        seen.push({
          url: req.url ?? '',
          auth: req.headers.authorization,
          date: req.headers['x-amz-date'] as string | undefined,
        });
        if (refusals-- > 0) {
          res.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' });
          res.end('{"error":{"code":"backpressure","message":"busy"}}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"lsn":7,"count":3}');
      });
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
    try {
      await fs.writeFile(path.join(dir, 'three.ndjson'), '{"id":1}\n{"id":2}\n{"id":3}\n');
      const started = Date.now();
      const r = await cli([
        'load',
        path.join(dir, 'three.ndjson'),
        '--table',
        't',
        '--url',
        url,
        '--token',
        'sekrit',
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
      expect(r.stderr).toMatch(/server busy \(503\); retrying in 1 s/);
      expect(seen).toHaveLength(3);
      expect(seen.every((s) => s.auth === 'Bearer sekrit')).toBe(true);
      seen.length = 0;
      const signed = await cli(
        ['load', path.join(dir, 'three.ndjson'), '--table', 't', '--url', url, '--aws'],
        {
          AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
          AWS_SECRET_ACCESS_KEY: 'secret',
          AWS_REGION: 'eu-west-1',
        },
      );
      expect(signed.code, signed.stderr).toBe(0);
      expect(seen[0].auth).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=.*host.*, Signature=[0-9a-f]{64}$/,
      );
      expect(seen[0].date).toMatch(/^\d{8}T\d{6}Z$/);
    } finally {
      fake.close();
    }
  });
});
