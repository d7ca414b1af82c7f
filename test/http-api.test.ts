/**
 * End to end over a real socket: the embedded service (`npm start`'s code path) on a loopback
 * port, driven with fetch the way the README's curl walk-through does.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as arrow from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceConfigFromEnv } from '../lib/config.ts';
import { type EmbeddedService, startEmbedded } from '../lib/embedded/embedded-service.ts';
import { parseExactJson } from '../lib/schema/exact-json.ts';
import { silentLogger } from '../lib/util/logger.ts';

let dir: string;
let svc: EmbeddedService;

async function start(): Promise<EmbeddedService> {
  const config = serviceConfigFromEnv({
    PORT: '0',
    MOONLINK_DATA_DIR: dir,
    MOONLINK_SNAPSHOT_INTERVAL_MS: '200',
    MOONLINK_COMMIT_INTERVAL_MS: '600000',
    MOONLINK_MAX_BODY_BYTES: '200000',
    MOONLINK_GC_GRACE_MS: '0',
  });
  return startEmbedded(config, silentLogger);
}

async function call(method: string, p: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(svc.url + p, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text ? (parseExactJson(text) as Record<string, any>) : undefined,
    headers: res.headers,
  };
}

/** Sends raw bytes on a new connection; everything the server answers before closing it. */
function rawRequest(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const { port } = new URL(svc.url);
    const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(text));
    let out = '';
    socket.on('data', (d) => {
      out += d;
    });
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
  });
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlhttp-'));
  svc = await start();
});
afterAll(async () => {
  await svc?.close({ flush: false });
  await fs.rm(dir, { recursive: true, force: true });
});

const orders = {
  name: 'orders',
  columns: [
    { name: 'id', type: 'long', nullable: false },
    { name: 'customer', type: 'string' },
    { name: 'amount', type: 'decimal(10,2)' },
    { name: 'placed_at', type: 'timestamptz' },
  ],
  primaryKey: ['id'],
};

describe('HTTP API (embedded service)', () => {
  it('answers health', async () => {
    expect(await call('GET', '/health')).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('creates tables and refuses duplicates and bad schemas', async () => {
    const created = await call('POST', '/tables', orders);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'orders', primaryKey: ['id'], formatVersion: 2 });
    expect(String(created.body!.metadataLocation)).toMatch(/metadata\/v1\.metadata\.json$/);
    expect((await call('POST', '/tables', orders)).status).toBe(409);
    const bad = await call('POST', '/tables', { name: 'x', columns: [{ name: 'a', type: 'varchar' }] });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'invalid_schema' } } });
    expect(
      (await call('POST', '/tables', { name: '../etc', columns: [{ name: 'a', type: 'int' }] })).status,
    ).toBe(400);
    const list = await call('GET', '/tables');
    expect(list.body!.tables.map((t: { name: string }) => t.name)).toEqual(['orders']);
  });

  it('writes, waits for visibility, reads a leased snapshot and scans rows', async () => {
    const w = await call('POST', '/tables/orders/rows?wait=visible', {
      ops: [
        { op: 'insert', row: { id: 1, customer: 'ada', amount: '12.50', placed_at: '2024-05-01T10:00:00Z' } },
        {
          op: 'insert',
          row: {
            id: '9007199254740993',
            customer: 'bob',
            amount: 3,
            placed_at: '2024-05-01T10:00:00.000001Z',
          },
        },
        { op: 'insert', row: { id: 3, customer: 'cy', amount: null, placed_at: null } },
      ],
    });
    expect(w.status).toBe(200);
    expect(w.body!.count).toBe(3);
    const lsn = Number(w.body!.lsn);
    const snap = await call('GET', `/tables/orders/snapshot?minLsn=${lsn}`);
    expect(snap.status).toBe(200);
    expect(Number(snap.body!.lsn)).toBeGreaterThanOrEqual(lsn);
    expect(snap.body!.leaseId).toMatch(/^orders\./);
    const files = snap.body!.dataFiles as { url: string; rowCount: number }[];
    expect(files.reduce((s, f) => s + f.rowCount, 0)).toBe(3);
    const bytes = new Uint8Array(await (await fetch(files[0].url)).arrayBuffer());
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('PAR1');
    const ranged = await fetch(files[0].url, { headers: { range: 'bytes=-4' } });
    expect(ranged.status).toBe(206);
    expect(new TextDecoder().decode(new Uint8Array(await ranged.arrayBuffer()))).toBe('PAR1');
    expect((await call('DELETE', `/leases/${snap.body!.leaseId}`)).status).toBe(204);
    expect((await call('DELETE', `/leases/${snap.body!.leaseId}`)).status).toBe(404);

    const scan = await call('GET', `/tables/orders/rows?minLsn=${lsn}`);
    expect(scan.status).toBe(200);
    const rows = (scan.body!.rows as Record<string, unknown>[]).sort((a, b) =>
      BigInt(a.id as bigint) < BigInt(b.id as bigint) ? -1 : 1,
    );
    expect(rows).toEqual([
      { id: 1, customer: 'ada', amount: '12.50', placed_at: '2024-05-01T10:00:00.000000Z' },
      { id: 3, customer: 'cy', amount: null, placed_at: null },
      { id: 9007199254740993n, customer: 'bob', amount: '3.00', placed_at: '2024-05-01T10:00:00.000001Z' },
    ]);
  });

  it('applies upserts and deletes, pages with a cursor, projects columns and speaks Arrow', async () => {
    const w = await call('POST', '/tables/orders/rows?wait=visible', {
      ops: [
        { op: 'upsert', row: { id: 1, customer: 'ada', amount: '99.99', placed_at: '2024-05-02T00:00:00Z' } },
        { op: 'delete', row: { id: 3 } },
        { op: 'delete', row: { id: 12345 } },
        { op: 'insert', row: { id: 4, customer: 'dee', amount: '1.00', placed_at: '2024-05-02T00:00:00Z' } },
      ],
    });
    const lsn = Number(w.body!.lsn);
    const seen: unknown[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await call(
        'GET',
        `/tables/orders/rows?minLsn=${lsn}&limit=1&columns=id,amount${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.status).toBe(200);
      seen.push(...page.body!.rows);
      cursor = page.body!.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(seen).toHaveLength(3);
    expect(seen).toContainEqual({ id: 1, amount: '99.99' });
    expect(seen).not.toContainEqual(expect.objectContaining({ id: 3 }));
    const res = await fetch(`${svc.url}/tables/orders/rows?minLsn=${lsn}&columns=id,customer`, {
      headers: { accept: 'application/vnd.apache.arrow.stream' },
    });
    expect(res.headers.get('content-type')).toBe('application/vnd.apache.arrow.stream');
    const table = arrow.tableFromIPC(new Uint8Array(await res.arrayBuffer()));
    expect(table.numRows).toBe(3);
    expect(table.schema.fields.map((f) => f.name)).toEqual(['id', 'customer']);
  });

  it('refuses bad input with a clear 4xx and applies nothing of it', async () => {
    const before = await call('GET', '/tables/orders');
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/tables/orders/rows', '{"ops": [', 400, 'malformed_json'],
      ['POST', '/tables', '{"name": "t2", "columns": [', 400, 'malformed_json'],
      [
        'POST',
        '/tables/orders/rows',
        {
          ops: [
            { op: 'insert', row: { id: 7, customer: 'x' } },
            { op: 'insert', row: { id: 8, nope: 1 } },
          ],
        },
        400,
        'invalid_request',
      ],
      [
        'POST',
        '/tables/orders/rows',
        { ops: [{ op: 'insert', row: { id: 'abc' } }] },
        400,
        'invalid_request',
      ],
      ['POST', '/tables/missing/rows', { ops: [{ op: 'insert', row: { id: 1 } }] }, 404, 'not_found'],
      ['POST', '/tables/bad%20name/rows', { ops: [] }, 400, 'invalid_table_name'],
      [
        'POST',
        '/tables/orders/rows',
        { ops: [{ op: 'insert', row: { id: 1, customer: 'x'.repeat(300_000) } }] },
        413,
        'payload_too_large',
      ],
      ['GET', '/tables/orders/snapshot?minLsn=-1', undefined, 400, 'invalid_request'],
      ['GET', '/nope', undefined, 404, 'not_found'],
    ];
    for (const [method, p, body, status, code] of cases) {
      const r = await call(method, p, body);
      expect(r.status, `${method} ${p}`).toBe(status);
      expect(r.body?.error?.code, `${method} ${p}`).toBe(code);
    }
    // What Node's HTTP parser refuses still gets a JSON error body.
    for (const line of ['GET /tables/a b HTTP/1.1', 'GET /tables/\u0001 HTTP/1.1']) {
      const raw = await rawRequest(`${line}\r\nhost: x\r\n\r\n`);
      expect(raw, line).toMatch(/^HTTP\/1.1 400 Bad Request\r\n/);
      const json = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
      expect(json.error.code, line).toBe('malformed_request');
    }
    const second = await call('POST', '/tables/orders/rows', {
      ops: [
        { op: 'insert', row: { id: 7, customer: 'x' } },
        { op: 'insert', row: { id: 8, nope: 1 } },
      ],
    });
    expect(second.body!.error).toMatchObject({
      index: 1,
      message: expect.stringContaining('ops[1].row.nope: unknown column'),
    });
    const after = await call('GET', '/tables/orders');
    expect(after.body!.lsn).toEqual(before.body!.lsn);
    expect((await call('GET', '/health')).status).toBe(200);
  });

  it('flushes to Iceberg and describes the table', async () => {
    const f = await call('POST', '/tables/orders/flush');
    expect(f.status).toBe(200);
    expect(String(f.body!.metadataLocation)).toMatch(
      /^file:\/\/.*\/tables\/orders\/metadata\/v\d+\.metadata\.json$/,
    );
    const metadataFile = new URL(String(f.body!.metadataLocation)).pathname;
    const metadata = JSON.parse(await fs.readFile(metadataFile, 'utf8'));
    expect(metadata['current-snapshot-id']).toBeTypeOf('number');
    const d = await call('GET', '/tables/orders');
    expect(d.body).toMatchObject({ name: 'orders', rows: 3, metadataLocation: f.body!.metadataLocation });
    expect(d.body!.columns).toEqual([
      { name: 'id', type: 'long', nullable: false },
      { name: 'customer', type: 'string', nullable: true },
      { name: 'amount', type: 'decimal(10,2)', nullable: true },
      { name: 'placed_at', type: 'timestamptz', nullable: true },
    ]);
  });

  it('keeps every acknowledged write across a restart', async () => {
    const w = await call('POST', '/tables/orders/rows', {
      ops: [{ op: 'insert', row: { id: 5, customer: 'eve' } }],
    });
    await svc.close({ flush: false });
    svc = await start();
    const scan = await call('GET', `/tables/orders/rows?minLsn=${w.body!.lsn}`);
    expect(scan.body!.rows.map((r: { id: unknown }) => String(r.id)).sort()).toEqual([
      '1',
      '4',
      '5',
      '9007199254740993',
    ]);
  });

  it('drops tables', async () => {
    expect((await call('DELETE', '/tables/orders')).status).toBe(204);
    expect((await call('GET', '/tables/orders')).status).toBe(404);
    expect((await call('DELETE', '/tables/orders')).status).toBe(404);
    await expect(fs.readdir(path.join(dir, 'objects', 'tables', 'orders'))).rejects.toThrow();
  });
});
