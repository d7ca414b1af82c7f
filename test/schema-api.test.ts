/**
 * `POST /tables/{name}/schema` end to end on the embedded service (`npm start`'s code path):
 * bad changes refused with the index of the first one and nothing applied; changes ordered
 * with writes in the log (a write after a change is checked against the new schema, rows before
 * it read null in an added column); a restart without a flush replays across the change; a
 * table created with `"schemaEvolution": "add-columns"` adds columns for new fields.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceConfigFromEnv } from '../lib/config.ts';
import { type EmbeddedService, startEmbedded } from '../lib/embedded/embedded-service.ts';
import { parseExactJson } from '../lib/schema/exact-json.ts';
import { silentLogger } from '../lib/util/logger.ts';

let dir: string;
let svc: EmbeddedService;

/** Commits only on request (a flush), so a restart replays across the changes it crosses. */
function start(schemaCommitDelayMs = '600000'): Promise<EmbeddedService> {
  return startEmbedded(
    serviceConfigFromEnv({
      PORT: '0',
      MOONLINK_DATA_DIR: dir,
      MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
      MOONLINK_COMMIT_INTERVAL_MS: '600000',
      MOONLINK_SCHEMA_COMMIT_DELAY_MS: schemaCommitDelayMs,
    }),
    silentLogger,
  );
}

async function call(method: string, p: string, body?: unknown) {
  const res = await fetch(svc.url + p, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (parseExactJson(text) as Record<string, any>) : undefined };
}

const lsnJson = (l: bigint): string => l.toString();

async function eventually(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const rows = async (table: string, minLsn?: unknown) =>
  (await call('GET', `/tables/${table}/rows${minLsn === undefined ? '' : `?minLsn=${minLsn}`}`)).body!;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlschema-'));
  svc = await start();
});
afterAll(async () => {
  await svc?.close({ flush: false });
  await fs.rm(dir, { recursive: true, force: true });
});

describe('schema changes over HTTP', () => {
  it('refuses bad changes by index and applies nothing of them', async () => {
    expect(
      (
        await call('POST', '/tables', {
          name: 'people',
          columns: [
            { name: 'id', type: 'long', nullable: false },
            { name: 'name', type: 'string' },
            { name: 'age', type: 'int' },
            { name: 'address', type: 'struct<city:string,zip:string>' },
          ],
          primaryKey: ['id'],
        })
      ).status,
    ).toBe(201);
    const bad: [unknown[], number, RegExp][] = [
      [[{ action: 'add-column', name: 'name', type: 'string' }], 0, /already exists/],
      [
        [
          { action: 'add-column', name: 'ok', type: 'string' },
          { action: 'drop-column', name: 'id' },
        ],
        1,
        /primary key/,
      ],
      [[{ action: 'rename-column', name: 'id', newName: 'pk' }], 0, /primary key/],
      [[{ action: 'widen-column', name: 'age', type: 'string' }], 0, /cannot change/],
      [[{ action: 'widen-column', name: 'name', type: 'long' }], 0, /cannot change/],
      [[{ action: 'drop-column', name: 'nope' }], 0, /unknown column/],
      [[{ action: 'add-column', name: 'x', type: 'lnog' }], 0, /type|lnog/],
      [[{ action: 'add-column', name: 'address.zip', type: 'string' }], 0, /already exists/],
      [[{ action: 'explode', name: 'x' }], 0, /action/],
      [[{ action: 'add-column', name: 'x', type: 'string', nullable: false }], 0, /nullable/],
      [[{ action: 'add-column', name: 'x', type: 'int', initialDefault: 3 }], 0, /version 3/],
    ];
    for (const [changes, index, message] of bad) {
      const r = await call('POST', '/tables/people/schema', { changes });
      expect(r.status, JSON.stringify(changes)).toBe(400);
      expect(r.body!.error.code).toBe('invalid_schema_change');
      expect(r.body!.error.index).toBe(index);
      expect(r.body!.error.message).toMatch(message);
    }
    const d = (await call('GET', '/tables/people')).body!;
    expect(d.schemaId).toBe(0);
    expect(d.columns.map((c: { name: string }) => c.name)).toEqual(['id', 'name', 'age', 'address']);
    expect((await call('POST', '/tables/nope/schema', { changes: [] })).status).toBe(404);
  });

  it('orders changes with writes, reads old rows in the new schema, and replays across a change', async () => {
    const w1 = await call('POST', '/tables/people/rows', {
      ops: [
        { op: 'insert', row: { id: 1, name: 'ann', age: 30, address: { city: 'Oslo', zip: '0150' } } },
        { op: 'insert', row: { id: 2, name: 'bob', age: 41 } },
      ],
    });
    expect(w1.status).toBe(200);
    const c = await call('POST', '/tables/people/schema', {
      changes: [
        { action: 'add-column', name: 'email', type: 'string' },
        { action: 'rename-column', name: 'name', newName: 'full_name' },
        { action: 'widen-column', name: 'age', type: 'long' },
        { action: 'add-column', name: 'address.country', type: 'string' },
        { action: 'rename-column', name: 'address.zip', newName: 'postcode' },
      ],
    });
    expect(c.status).toBe(200);
    expect(c.body!.schemaId).toBe(1);
    expect(BigInt(c.body!.lsn)).toBeGreaterThan(BigInt(w1.body!.lsn));
    expect(c.body!.columns).toEqual([
      { name: 'id', type: 'long', nullable: false },
      { name: 'full_name', type: 'string', nullable: true },
      { name: 'age', type: 'long', nullable: true },
      { name: 'address', type: 'struct<city:string,postcode:string,country:string>', nullable: true },
      { name: 'email', type: 'string', nullable: true },
    ]);
    // A write naming an old name is refused; the new names are taken.
    const old = await call('POST', '/tables/people/rows', {
      ops: [{ op: 'insert', row: { id: 3, name: 'x' } }],
    });
    expect(old.status).toBe(400);
    expect(old.body!.error.message).toMatch(/unknown column/);
    const w2 = await call('POST', '/tables/people/rows', {
      ops: [
        { op: 'insert', row: { id: 3, full_name: 'cy', age: 9_000_000_000, email: 'cy@example.com' } },
        {
          op: 'upsert',
          row: { id: 2, full_name: 'bob', age: 42, address: { city: 'Bergen', country: 'NO' } },
        },
      ],
    });
    expect(w2.status).toBe(200);
    const drop = await call('POST', '/tables/people/schema', {
      changes: [{ action: 'drop-column', name: 'email' }],
    });
    expect(drop.status).toBe(200);
    expect(drop.body!.schemaId).toBe(2);
    const expected = [
      { id: 1, full_name: 'ann', age: 30, address: { city: 'Oslo', postcode: '0150', country: null } },
      { id: 2, full_name: 'bob', age: 42, address: { city: 'Bergen', postcode: null, country: 'NO' } },
      { id: 3, full_name: 'cy', age: 9000000000, address: null },
    ];
    const norm = (b: Record<string, any>) =>
      (b.rows as Record<string, unknown>[])
        .map((r) => ({ ...r, id: Number(r.id), age: r.age === null ? null : Number(r.age) }))
        .sort((a, b) => a.id - b.id);
    expect(norm(await rows('people', drop.body!.lsn))).toEqual(expected);
    const described = (await call('GET', '/tables/people')).body!;
    expect(described.schemaId).toBe(2);

    // Restart without a flush: nothing of the changes is in Iceberg, so replay crosses both.
    await svc.close({ flush: false });
    svc = await start();
    const reopened = (await call('GET', '/tables/people')).body!;
    expect(BigInt(reopened.committedLsn)).toBeLessThan(BigInt(c.body!.lsn));
    expect(norm(await rows('people', drop.body!.lsn))).toEqual(expected);
    expect((await call('GET', '/tables/people')).body!.schemaId).toBe(2);
    // With the default delay (a second), a replayed change is committed to Iceberg soon, not at
    // the next commit interval (10 minutes here): the REST catalog shows the history.
    await svc.close({ flush: false });
    svc = await start('1000');
    await eventually(async () => {
      const loaded = (await call('GET', '/iceberg/v1/namespaces/default/tables/people')).body!;
      return loaded.metadata['current-schema-id'] === 2;
    });
    const loaded = (await call('GET', '/iceberg/v1/namespaces/default/tables/people')).body!;
    expect(loaded.metadata.schemas.map((s: { 'schema-id': number }) => s['schema-id'])).toEqual([0, 1, 2]);
    await svc.close({ flush: false });
    svc = await start();
    expect(norm(await rows('people'))).toEqual(expected);
  });

  it('a write checked against a cached definition older than a change is checked again against the catalog', async () => {
    // As on AWS, where the change went through another function instance: this process's cache
    // still holds the old definition (the change is made on the writer, not through the route).
    expect(
      (
        await call('POST', '/tables/people/rows', {
          ops: [{ op: 'upsert', row: { id: 50, full_name: 'z' } }],
        })
      ).status,
    ).toBe(200);
    await svc.writer.changeSchema('people', {
      changes: [{ action: 'add-column', name: 'nick', type: 'string' }],
    });
    const w = await call('POST', '/tables/people/rows', {
      ops: [{ op: 'upsert', row: { id: 51, full_name: 'q', nick: 'qq' } }],
    });
    expect(w.status, JSON.stringify(w.body)).toBe(200);
    const got = ((await rows('people', w.body!.lsn)).rows as Record<string, unknown>[]).find(
      (r) => Number(r.id) === 51,
    );
    expect(got?.nick).toBe('qq');
    // Still refused when the catalog's definition does not have the column either.
    expect(
      (await call('POST', '/tables/people/rows', { ops: [{ op: 'insert', row: { id: 52, nope: 1 } }] }))
        .status,
    ).toBe(400);
  });

  it('on a v3 table an added column may have an initial default that older rows read', async () => {
    expect(
      (
        await call('POST', '/tables', {
          name: 'v3t',
          columns: [
            { name: 'id', type: 'long', nullable: false },
            { name: 'v', type: 'string' },
          ],
          primaryKey: ['id'],
          formatVersion: 3,
        })
      ).status,
    ).toBe(201);
    await call('POST', '/tables/v3t/rows', { ops: [{ op: 'insert', row: { id: 1, v: 'old' } }] });
    expect((await call('POST', '/tables/v3t/flush')).status).toBe(200);
    await call('POST', '/tables/v3t/rows', { ops: [{ op: 'insert', row: { id: 2, v: 'in memory' } }] });
    const c = await call('POST', '/tables/v3t/schema', {
      changes: [{ action: 'add-column', name: 'region', type: 'string', initialDefault: 'eu' }],
    });
    expect(c.status).toBe(200);
    const w = await call('POST', '/tables/v3t/rows', {
      ops: [
        { op: 'insert', row: { id: 3, v: 'new', region: 'us' } },
        { op: 'insert', row: { id: 4, v: 'new, no region' } },
      ],
    });
    const got = ((await rows('v3t', w.body!.lsn)).rows as Record<string, unknown>[])
      .map((r) => [Number(r.id), r.region])
      .sort();
    // Rows written before the column existed (in a file, or in memory then) read its default;
    // a row written after it without a value is null.
    expect(got).toEqual([
      [1, 'eu'],
      [2, 'eu'],
      [3, 'us'],
      [4, null],
    ]);
    expect((await call('POST', '/tables/v3t/flush')).status).toBe(200);
    const loaded = (await call('GET', '/iceberg/v1/namespaces/default/tables/v3t')).body!;
    const current = loaded.metadata.schemas.find(
      (x: { 'schema-id': number }) => x['schema-id'] === loaded.metadata['current-schema-id'],
    );
    expect(current.fields.at(-1)).toMatchObject({ name: 'region', required: false, 'initial-default': 'eu' });
  });

  it('a table with "schemaEvolution": "add-columns" adds a column for each new field', async () => {
    expect(
      (
        await call('POST', '/tables', {
          name: 'events',
          columns: [
            { name: 'id', type: 'long', nullable: false },
            { name: 'kind', type: 'string' },
          ],
          primaryKey: ['id'],
          schemaEvolution: 'add-columns',
        })
      ).status,
    ).toBe(201);
    expect(
      (await call('POST', '/tables/events/rows', { ops: [{ op: 'insert', row: { id: 1, kind: 'a' } }] }))
        .status,
    ).toBe(200);
    const w = await call('POST', '/tables/events/rows', {
      ops: [
        {
          op: 'insert',
          row: { id: 2, kind: 'b', n: 5, ratio: 1.5, ok: true, meta: { src: 'x', depth: 2 }, tags: ['t1'] },
        },
        { op: 'insert', row: { id: 3, n: 7, later: null } },
      ],
    });
    // "later" is only null: its type cannot be told, so the write is refused and nothing added.
    expect(w.status).toBe(400);
    expect(w.body!.error.message).toMatch(/later/);
    expect((await call('GET', '/tables/events')).body!.schemaId).toBe(0);
    const ok = await call('POST', '/tables/events/rows', {
      ops: [
        {
          op: 'insert',
          row: { id: 2, kind: 'b', n: 5, ratio: 1.5, ok: true, meta: { src: 'x', depth: 2 }, tags: ['t1'] },
        },
        { op: 'insert', row: { id: 3, n: 7 } },
      ],
    });
    expect(ok.status).toBe(200);
    const d = (await call('GET', '/tables/events')).body!;
    expect(d.schemaId).toBe(1);
    expect(d.columns.slice(2)).toEqual([
      { name: 'n', type: 'long', nullable: true },
      { name: 'ratio', type: 'double', nullable: true },
      { name: 'ok', type: 'boolean', nullable: true },
      { name: 'meta', type: 'struct<src:string,depth:long>', nullable: true },
      { name: 'tags', type: 'list<string>', nullable: true },
    ]);
    // A value that does not fit the inferred column is still refused.
    const misfit = await call('POST', '/tables/events/rows', {
      ops: [{ op: 'insert', row: { id: 4, n: 'five' } }],
    });
    expect(misfit.status).toBe(400);
    const got = (await rows('events', ok.body!.lsn)).rows as Record<string, unknown>[];
    expect(got.map((r) => [Number(r.id), r.n === null ? null : Number(r.n)]).sort()).toEqual([
      [1, null],
      [2, 5],
      [3, 7],
    ]);
    // Records a producer writes straight to the log (as to the Kinesis stream) add their columns
    // when the writer meets them, at their place in the log; one that does not fit is dead-lettered.
    const enc = (x: unknown) => new TextEncoder().encode(JSON.stringify(x));
    const dead = svc.writer.deadLettered;
    await svc.services.log.append('events', enc({ ops: [{ op: 'insert', row: { id: 5, via: 'stream' } }] }));
    await svc.services.log.append(
      'events',
      enc({ ops: [{ op: 'insert', row: { id: 6, n: 'not a long' } }] }),
    );
    const direct = await svc.services.log.append(
      'events',
      enc({ ops: [{ op: 'insert', row: { id: 7, via: 'again', depth: 3 } }] }),
    );
    const streamed = (await rows('events', lsnJson(direct))).rows as Record<string, unknown>[];
    expect(
      streamed
        .filter((r) => Number(r.id) >= 5)
        .map((r) => [Number(r.id), r.via, r.depth === null ? null : Number(r.depth)]),
    ).toEqual([
      [5, 'stream', null],
      [7, 'again', 3],
    ]);
    expect(svc.writer.deadLettered - dead).toBe(1);
    await eventually(async () => (await call('GET', '/tables/events')).body!.schemaId === 3);
    // A table without the option refuses new fields as before.
    const plain = await call('POST', '/tables/people/rows', {
      ops: [{ op: 'insert', row: { id: 9, shoe: 44 } }],
    });
    expect(plain.status).toBe(400);
  });
});
