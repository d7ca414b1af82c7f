/**
 * Write bodies other than JSON (`POST /tables/{name}/rows`): Arrow IPC streams and NDJSON,
 * against the embedded service. Good bodies read back exactly; bad ones (garbage, a truncated
 * stream, wrong types, unknown or missing columns, a bad `_op`, invalid UTF-8) are each a 400
 * naming the problem, with nothing applied; Arrow records in the log replay after a restart.
 */
import { promises as fs } from 'node:fs';
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
const config = () =>
  serviceConfigFromEnv({
    PORT: '0',
    MOONLINK_DATA_DIR: dir,
    MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
    MOONLINK_COMMIT_INTERVAL_MS: '600000',
  });

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlbulk-'));
  svc = await startEmbedded(config(), silentLogger);
});
afterAll(async () => {
  await svc?.close({ flush: false });
  await fs.rm(dir, { recursive: true, force: true });
});

async function call(method: string, p: string, body?: unknown, type = 'application/json') {
  const res = await fetch(svc.url + p, {
    method,
    headers: { 'content-type': type },
    body:
      body === undefined
        ? undefined
        : body instanceof Uint8Array || typeof body === 'string'
          ? (body as string)
          : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (parseExactJson(text) as any) : undefined };
}

const ARROW = 'application/vnd.apache.arrow.stream';
const show = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
const ipc = (columns: Record<string, arrow.Vector>): Uint8Array =>
  arrow.tableToIPC(new arrow.Table(columns), 'stream');

async function rows(table: string): Promise<Record<string, unknown>[]> {
  const f = await call('POST', `/tables/${table}/flush`);
  expect(f.status, show(f.body)).toBe(200);
  const r = await call('GET', `/tables/${table}/rows?minLsn=${f.body.lsn}&limit=100000`);
  expect(r.status, show(r.body)).toBe(200);
  return (r.body.rows as Record<string, unknown>[]).sort((a, b) => Number(a.id) - Number(b.id));
}

describe('Arrow IPC bodies', () => {
  beforeAll(async () => {
    const created = await call('POST', '/tables', {
      name: 'typed',
      columns: [
        { name: 'id', type: 'long' },
        { name: 'n', type: 'int' },
        { name: 'd', type: 'double' },
        { name: 'amount', type: 'decimal(10,2)' },
        { name: 'day', type: 'date' },
        { name: 'at', type: 'timestamptz' },
        { name: 'name', type: 'string' },
        { name: 'flag', type: 'boolean', nullable: true },
        { name: 'tags', type: 'list<string>' },
        { name: 'req', type: 'string', nullable: false },
      ],
      primaryKey: ['id'],
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  });

  it('takes canonical and widened Arrow types, and an _op column; reads back exactly', async () => {
    const body = ipc({
      id: arrow.vectorFromArray([1, 2, 3], new arrow.Int32()), // widened to long
      n: arrow.vectorFromArray([10, null, 30], new arrow.Int16()),
      d: arrow.vectorFromArray([1.5, 2.5, null], new arrow.Float32()),
      amount: arrow.makeVector({
        type: new arrow.Decimal(2, 10, 128),
        data: new Uint32Array([12345, 0, 0, 0, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 1, 0, 0, 0]),
      }),
      day: arrow.makeVector({ type: new arrow.DateDay(), data: new Int32Array([19000, 19001, 19002]) }),
      at: arrow.makeVector({
        type: new arrow.TimestampMillisecond('UTC'),
        data: new BigInt64Array([1_700_000_000_123n, 0n, -1n]),
      }),
      name: arrow.vectorFromArray(['a', 'ü', 'a'], new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32())),
      flag: arrow.vectorFromArray([true, false, null], new arrow.Bool()),
      tags: arrow.vectorFromArray(
        [['x', 'y'], [], null],
        new arrow.List(new arrow.Field('element', new arrow.Utf8(), true)),
      ),
      req: arrow.vectorFromArray(['r1', 'r2', 'r3'], new arrow.Utf8()),
    });
    const w = await call('POST', '/tables/typed/rows', body, ARROW);
    expect(w.status, show(w.body)).toBe(200);
    expect(w.body.count).toBe(3);
    const got = await rows('typed');
    expect(got).toEqual([
      {
        id: 1,
        n: 10,
        d: 1.5,
        amount: '123.45',
        day: '2022-01-08',
        at: '2023-11-14T22:13:20.123000Z',
        name: 'a',
        flag: true,
        tags: ['x', 'y'],
        req: 'r1',
      },
      expect.objectContaining({ id: 2, n: null, amount: '-0.01', name: 'ü', flag: false, tags: [] }),
      expect.objectContaining({
        id: 3,
        d: null,
        amount: '0.01',
        at: '1969-12-31T23:59:59.999000Z',
        tags: null,
      }),
    ]);
    // Upsert and delete through _op; a delete needs only its key.
    const ops = ipc({
      id: arrow.vectorFromArray([2n, 3n], new arrow.Int64()),
      req: arrow.vectorFromArray(['changed', null], new arrow.Utf8()),
      _op: arrow.vectorFromArray(['upsert', 'delete'], new arrow.Utf8()),
    });
    const u = await call('POST', '/tables/typed/rows', ops, ARROW);
    expect(u.status, show(u.body)).toBe(200);
    const after = await rows('typed');
    expect(after.map((r) => [r.id, r.req, r.n])).toEqual([
      [1, 'r1', 10],
      [2, 'changed', null],
    ]);
  });

  it('refuses bad Arrow bodies with a 400 naming the problem, and applies nothing', async () => {
    const before = await rows('typed');
    const good = ipc({
      id: arrow.vectorFromArray([100n], new arrow.Int64()),
      req: arrow.vectorFromArray(['x'], new arrow.Utf8()),
    });
    const badUtf8 = arrow.makeVector({
      type: new arrow.Utf8(),
      data: new Uint8Array([0xff, 0xfe]),
      valueOffsets: new Int32Array([0, 2]),
    } as never);
    const cases: [string, Uint8Array, RegExp][] = [
      [
        'garbage',
        new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8]),
        /not a valid Arrow IPC stream|no rows|no columns/,
      ],
      ['truncated', good.subarray(0, good.length - 20), /Arrow|no rows/],
      [
        'unknown column',
        ipc({
          id: arrow.vectorFromArray([101n], new arrow.Int64()),
          nope: arrow.vectorFromArray([1], new arrow.Int32()),
          req: arrow.vectorFromArray(['x'], new arrow.Utf8()),
        }),
        /column "nope": unknown column/,
      ],
      [
        'missing required',
        ipc({ id: arrow.vectorFromArray([102n], new arrow.Int64()) }),
        /column "req": is not nullable and missing/,
      ],
      [
        'wrong type',
        ipc({
          id: arrow.vectorFromArray(['x'], new arrow.Utf8()),
          req: arrow.vectorFromArray(['x'], new arrow.Utf8()),
        }),
        /column "id": Arrow type Utf8 does not fit long/,
      ],
      [
        'narrowing',
        ipc({
          id: arrow.vectorFromArray([1n], new arrow.Int64()),
          n: arrow.vectorFromArray([1n], new arrow.Int64()),
          req: arrow.vectorFromArray(['x'], new arrow.Utf8()),
        }),
        /column "n": Arrow type Int64 does not fit int/,
      ],
      [
        'bad _op',
        ipc({
          id: arrow.vectorFromArray([103n], new arrow.Int64()),
          req: arrow.vectorFromArray(['x'], new arrow.Utf8()),
          _op: arrow.vectorFromArray(['merge'], new arrow.Utf8()),
        }),
        /row 0, column "_op": expected "insert", "upsert" or "delete", got "merge"/,
      ],
      [
        'null key',
        ipc({
          id: arrow.vectorFromArray([null], new arrow.Int64()),
          req: arrow.vectorFromArray(['x'], new arrow.Utf8()),
        }),
        /row 0, column "id": is part of the primary key/,
      ],
      [
        'invalid UTF-8',
        ipc({ id: arrow.vectorFromArray([104n], new arrow.Int64()), req: badUtf8 }),
        /row 0, column "req": is not valid UTF-8/,
      ],
      [
        'nanoseconds',
        ipc({
          id: arrow.vectorFromArray([105n], new arrow.Int64()),
          req: arrow.vectorFromArray(['x'], new arrow.Utf8()),
          at: arrow.makeVector({ type: new arrow.TimestampNanosecond('UTC'), data: new BigInt64Array([1n]) }),
        }),
        /not a whole microsecond/,
      ],
      [
        'naive for tz',
        ipc({
          id: arrow.vectorFromArray([106n], new arrow.Int64()),
          req: arrow.vectorFromArray(['x'], new arrow.Utf8()),
          at: arrow.makeVector({ type: new arrow.TimestampMicrosecond(), data: new BigInt64Array([1n]) }),
        }),
        /does not fit timestamptz/,
      ],
    ];
    for (const [what, body, message] of cases) {
      const r = await call('POST', '/tables/typed/rows', body, ARROW);
      expect(r.status, `${what}: ${show(r.body)}`).toBe(400);
      expect(r.body.error.message, what).toMatch(message);
    }
    expect(await rows('typed')).toEqual(before);
  });

  it('Arrow records in the log are applied again after a restart', async () => {
    const created = await call('POST', '/tables', {
      name: 'replayed',
      columns: [
        { name: 'id', type: 'long' },
        { name: 'v', type: 'string' },
      ],
      primaryKey: ['id'],
    });
    expect(created.status).toBe(201);
    const n = 5000;
    const w = await call(
      'POST',
      '/tables/replayed/rows',
      ipc({
        id: arrow.makeVector(BigInt64Array.from({ length: n }, (_, i) => BigInt(i))),
        v: arrow.vectorFromArray(
          Array.from({ length: n }, (_, i) => `v${i}`),
          new arrow.Utf8(),
        ),
      }),
      ARROW,
    );
    expect(w.status, show(w.body)).toBe(200);
    // Not flushed: the rows exist only in the log, as the Arrow bytes that came.
    await svc.close({ flush: false });
    svc = await startEmbedded(config(), silentLogger);
    const got = await rows('replayed');
    expect(got).toHaveLength(n);
    expect(got[4321]).toEqual({ id: 4321, v: 'v4321' });
  });
});

describe('NDJSON bodies', () => {
  beforeAll(async () => {
    const created = await call('POST', '/tables', {
      name: 'lines',
      columns: [
        { name: 'id', type: 'long' },
        { name: 'v', type: 'string' },
      ],
      primaryKey: ['id'],
    });
    expect(created.status).toBe(201);
  });

  it('takes one operation per line, or bare rows with ?op=, blank lines and CRLF included', async () => {
    const ops =
      '{"op":"insert","row":{"id":1,"v":"a"}}\n\n{"op":"insert","row":{"id":2,"v":"b"}}\r\n  {"op":"delete","row":{"id":1}}\n';
    const a = await call('POST', '/tables/lines/rows', ops, 'application/x-ndjson');
    expect(a.status, show(a.body)).toBe(200);
    expect(a.body.count).toBe(3);
    const bare = '{"id":2,"v":"B"}\n{"id":9007199254740993,"v":"big"}';
    const b = await call('POST', '/tables/lines/rows?op=upsert', bare, 'application/x-ndjson');
    expect(b.status, show(b.body)).toBe(200);
    const got = await rows('lines');
    expect(got.map((r) => [String(r.id), r.v])).toEqual([
      ['2', 'B'],
      ['9007199254740993', 'big'],
    ]);
  });

  it('refuses a bad line naming it, and applies nothing of the body', async () => {
    const before = await rows('lines');
    const cases: [string, string, RegExp][] = [
      [
        '/tables/lines/rows',
        '{"op":"insert","row":{"id":50,"v":"x"}}\n{"op":"insert","row":{"id":51,"nope":1}}',
        /ops\[1\]\.row\.nope: unknown column/,
      ],
      ['/tables/lines/rows', '{"op":"insert","row":{"id":52}}\n[1,2]', /line 2: expected a JSON object/],
      [
        '/tables/lines/rows',
        '{"op":"insert","row":{"id":53}}\n{"op":"insert","row":',
        /JSON|position|Unexpected/i,
      ],
      ['/tables/lines/rows?op=merge', '{"id":54}', /op must be/],
      ['/tables/lines/rows', '\n\n', /no lines/],
    ];
    for (const [p, body, message] of cases) {
      const r = await call('POST', p, body, 'application/x-ndjson');
      expect(r.status, `${body}: ${show(r.body)}`).toBe(400);
      expect(r.body.error.message).toMatch(message);
    }
    expect(await rows('lines')).toEqual(before);
  });

  it('decodes a large body as it arrives (sent in pauses), the same rows and errors as whole', async () => {
    const lines = Array.from({ length: 40_000 }, (_, i) =>
      JSON.stringify({ id: 1_000_000 + i, v: `row ${i} `.repeat(3) }),
    );
    const text = lines.join('\n');
    expect(text.length).toBeGreaterThan(1_000_000);
    // Sent in 8 parts with a pause between them: pieces are decoded while the rest is on its way.
    const chunks = Array.from({ length: 8 }, (_, i) =>
      text.slice((i * text.length) / 8, ((i + 1) * text.length) / 8),
    );
    const send = (parts: string[]) =>
      fetch(`${svc.url}/tables/lines/rows?op=upsert`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        duplex: 'half',
        body: new ReadableStream({
          async pull(c) {
            const next = parts.shift();
            if (next === undefined) return c.close();
            await new Promise((r) => setTimeout(r, 20));
            c.enqueue(new TextEncoder().encode(next));
          },
        }),
      } as RequestInit).then(async (r) => ({
        status: r.status,
        body: parseExactJson(await r.text()) as any,
      }));
    const r = await send([...chunks]);
    expect(r.status, show(r.body)).toBe(200);
    expect(r.body.count).toBe(40_000);
    const got = await rows('lines');
    expect(got.filter((x) => Number(x.id) >= 1_000_000 && Number(x.id) < 2_000_000)).toHaveLength(40_000);
    expect(got.find((x) => String(x.id) === '1039999')?.v).toBe('row 39999 '.repeat(3));
    // A bad line late in a large body: the usual error, naming it, and nothing applied.
    const bad = await send([...chunks.slice(0, 7), `${chunks[7]}\n{"id":"no","v":"x"}`]);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/ops\[40000\]\.row\.id/);
  });
});
