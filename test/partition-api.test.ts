/**
 * Partitioned tables end to end on the embedded service (`npm start`'s code path): `POST
 * /tables` with `partitionBy`/`sortBy` (bad transforms, unknown columns and unknown fields are
 * 400s), the snapshot API's per-file partitions, the scan filter skipping files by partition
 * (and still filtering rows exactly), set-partitioning through the schema endpoint, a drop of a
 * partition column refused, and the REST catalog's create with a partition-spec and
 * write-order as an outside engine sends them.
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

async function call(method: string, p: string, body?: unknown) {
  const res = await fetch(svc.url + p, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (parseExactJson(text) as Record<string, any>) : undefined };
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlpartapi-'));
  svc = await startEmbedded(
    serviceConfigFromEnv({
      PORT: '0',
      MOONLINK_DATA_DIR: dir,
      MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
      MOONLINK_COMMIT_INTERVAL_MS: '600000',
    }),
    silentLogger,
  );
});
afterAll(async () => {
  await svc?.close({ flush: false });
  await fs.rm(dir, { recursive: true, force: true });
});

/** A snapshot at `lsn` whose rows are all in data files (a flush's files published). */
async function flushedSnapshot(table: string, lsn: unknown): Promise<Record<string, any>> {
  const end = Date.now() + 10_000;
  for (;;) {
    const snap = (await call('GET', `/tables/${table}/snapshot?minLsn=${lsn}`)).body!;
    if (snap.dataFiles.every((f: { kind: string }) => f.kind === 'data') || Date.now() > end) return snap;
    await call('DELETE', `/leases/${snap.leaseId}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const columns = [
  { name: 'id', type: 'long', nullable: false },
  { name: 'placed_at', type: 'timestamptz' },
  { name: 'region', type: 'string' },
  { name: 'ok', type: 'boolean' },
];

describe('partitioned tables over HTTP', () => {
  it('refuses partitionBy and sortBy that do not fit, and fields it does not know', async () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [
        { partitionBy: [{ column: 'id', transform: 'day' }] },
        /partitionBy\[0\]: day does not apply to a long/,
      ],
      [
        { partitionBy: [{ column: 'ok', transform: 'truncate[4]' }] },
        /truncate\[4\] does not apply to a boolean/,
      ],
      [{ partitionBy: [{ column: 'nope' }] }, /unknown column "nope"/],
      [{ partitionBy: [{ column: 'id', transform: 'bucket[]' }] }, /unknown transform/],
      [{ partitionBy: [{ column: 'id', tranform: 'bucket[2]' }] }, /tranform/],
      [{ partitonBy: [{ column: 'id', transform: 'bucket[2]' }] }, /partitonBy/],
      [{ sortBy: [{ column: 'region', direction: 'up' }] }, /direction/],
    ];
    for (const [extra, message] of bad) {
      const r = await call('POST', '/tables', { name: 'bad', columns, primaryKey: ['id'], ...extra });
      expect(r.status, JSON.stringify(extra)).toBe(400);
      expect(r.body!.error.message).toMatch(message);
    }
    expect((await call('GET', '/tables/bad')).status).toBe(404);
  });

  it('writes files per partition, shows them in snapshots, and prunes scans by partition', async () => {
    const created = await call('POST', '/tables', {
      name: 'orders',
      columns,
      primaryKey: ['id'],
      partitionBy: [
        { column: 'placed_at', transform: 'day' },
        { column: 'id', transform: 'bucket[4]' },
      ],
      sortBy: [{ column: 'region', direction: 'desc' }],
    });
    expect(created.status).toBe(201);
    const d = (await call('GET', '/tables/orders')).body!;
    expect(d.partitionBy).toEqual([
      { column: 'placed_at', transform: 'day', name: 'placed_at_day' },
      { column: 'id', transform: 'bucket[4]', name: 'id_bucket' },
    ]);
    expect(d.sortBy).toEqual([{ column: 'region', direction: 'desc', nulls: 'last' }]);
    const ops = [];
    for (let i = 0; i < 60; i++) {
      const day = 1 + (i % 3);
      ops.push({
        op: 'insert',
        row: {
          id: i,
          placed_at: `2024-05-0${day}T10:00:00Z`,
          region: ['eu', 'us', null][i % 3],
          ok: i % 2 === 0,
        },
      });
    }
    const w = await call('POST', '/tables/orders/rows', { ops });
    expect(w.status).toBe(200);
    expect((await call('POST', '/tables/orders/flush', {})).status).toBe(200);

    const snap = await flushedSnapshot('orders', w.body!.lsn);
    const files = snap.dataFiles.filter((f: { kind: string }) => f.kind === 'data');
    // 3 days × 4 buckets at most, each file one partition.
    expect(files.length).toBeGreaterThan(3);
    expect(files.length).toBeLessThanOrEqual(12);
    for (const f of files) {
      expect(Object.keys(f.partition)).toEqual(['placed_at_day', 'id_bucket']);
      expect([19844, 19845, 19846]).toContain(f.partition.placed_at_day);
      expect(f.partition.id_bucket).toBeGreaterThanOrEqual(0);
      expect(f.partition.id_bucket).toBeLessThan(4);
      expect(f.specId).toBe(0);
    }
    await call('DELETE', `/leases/${snap.leaseId}`);

    const all = (await call('GET', '/tables/orders/rows?limit=1000')).body!;
    expect(all.rows).toHaveLength(60);
    expect(all.filesSkipped).toBe(0);
    const scan = (
      await call(
        'GET',
        `/tables/orders/rows?limit=1000&filter=${encodeURIComponent('placed_at>=2024-05-02T00:00:00Z')}`,
      )
    ).body!;
    expect(scan.rows).toHaveLength(40);
    expect(scan.rows.every((r: { placed_at: string }) => r.placed_at >= '2024-05-02')).toBe(true);
    const day1Files = files.filter(
      (f: { partition: { placed_at_day: number } }) => f.partition.placed_at_day === 19844,
    ).length;
    expect(scan.filesSkipped).toBe(day1Files);
    // Equality on the bucketed key skips every other bucket; the row filter is exact.
    const one = (await call('GET', '/tables/orders/rows?filter=id=7')).body!;
    expect(one.rows.map((r: { id: number }) => r.id)).toEqual([7]);
    // Its bucket's files (one per day at most) are read, no other.
    expect(one.filesScanned).toBeLessThanOrEqual(3);
    expect(one.filesScanned + one.filesSkipped).toBe(files.length);
    // Two conditions, a quoted string with a comma, and a non-partition column (rows only).
    const two = (
      await call(
        'GET',
        `/tables/orders/rows?limit=1000&filter=${encodeURIComponent('placed_at<2024-05-02T00:00:00Z,region="eu"')}`,
      )
    ).body!;
    expect(two.rows.every((r: { region: string }) => r.region === 'eu')).toBe(true);
    expect(two.rows).toHaveLength(20);
    const quoted = (await call('GET', `/tables/orders/rows?filter=${encodeURIComponent('region="a,b"')}`))
      .body!;
    expect(quoted.rows).toEqual([]);
    for (const [f, message] of [
      ['nope=1', /unknown column "nope"/],
      ['id~1', /not column<op>value/],
      ['placed_at>=yesterday', /placed_at/],
      ['region="open', /not closed/],
    ] as const) {
      const r = await call('GET', `/tables/orders/rows?filter=${encodeURIComponent(f)}`);
      expect(r.status, f).toBe(400);
      expect(r.body!.error.message).toMatch(message);
    }
  });

  it('changes partitioning through the schema endpoint and refuses to drop a partition column', async () => {
    const drop = await call('POST', '/tables/orders/schema', {
      changes: [{ action: 'drop-column', name: 'placed_at' }],
    });
    expect(drop.status).toBe(400);
    expect(drop.body!.error.message).toMatch(/partitioned by/);
    const badSpec = await call('POST', '/tables/orders/schema', {
      changes: [{ action: 'set-partitioning', partitionBy: [{ column: 'ok', transform: 'month' }] }],
    });
    expect(badSpec.status).toBe(400);
    expect(badSpec.body!.error.message).toMatch(/month does not apply to a boolean/);

    const set = await call('POST', '/tables/orders/schema', {
      changes: [
        {
          action: 'set-partitioning',
          partitionBy: [{ column: 'region' }, { column: 'placed_at', transform: 'day' }],
        },
      ],
    });
    expect(set.status).toBe(200);
    expect(set.body!.partitionSpecId).toBe(1);
    expect(set.body!.partitionBy).toEqual([
      { column: 'region', transform: 'identity', name: 'region' },
      { column: 'placed_at', transform: 'day', name: 'placed_at_day' },
    ]);
    const d = (await call('GET', '/tables/orders')).body!;
    expect(d.partitionSpecId).toBe(1);
    // The Iceberg metadata has both specs; the field id of day(placed_at) is kept.
    const meta = (await call('GET', '/iceberg/v1/namespaces/default/tables/orders')).body!.metadata;
    expect(meta['default-spec-id']).toBe(1);
    expect(
      meta['partition-specs'].map((s: { fields: { 'field-id': number; name: string }[] }) =>
        s.fields.map((f) => `${f.name}:${f['field-id']}`),
      ),
    ).toEqual([
      ['placed_at_day:1000', 'id_bucket:1001'],
      ['region:1002', 'placed_at_day:1000'],
    ]);
    const w = await call('POST', '/tables/orders/rows', {
      ops: [{ op: 'insert', row: { id: 100, placed_at: '2024-05-09T00:00:00Z', region: 'ap' } }],
    });
    expect((await call('POST', '/tables/orders/flush', {})).status).toBe(200);
    const snap = await flushedSnapshot('orders', w.body!.lsn);
    const newFile = snap.dataFiles.find((f: { specId: number }) => f.specId === 1);
    expect(newFile.partition).toEqual({ region: 'ap', placed_at_day: 19852 });
    await call('DELETE', `/leases/${snap.leaseId}`);
    // Pruning works across specs: old files by day, the new one by region and day.
    const scan = (
      await call('GET', `/tables/orders/rows?limit=1000&filter=${encodeURIComponent('region="ap"')}`)
    ).body!;
    expect(scan.rows.map((r: { id: number }) => r.id)).toEqual([100]);
    expect(scan.filesScanned).toBeGreaterThan(0);
    expect(scan.filesSkipped).toBeGreaterThanOrEqual(0);
    const late = (
      await call(
        'GET',
        `/tables/orders/rows?limit=1000&filter=${encodeURIComponent('placed_at>2024-05-05T00:00:00Z')}`,
      )
    ).body!;
    expect(late.rows.map((r: { id: number }) => r.id)).toEqual([100]);
    expect(late.filesScanned).toBe(1);

    // Column changes and set-partitioning in one request, all or nothing: a bad one changes
    // nothing (its index is the request's), a good one adds the column and partitions by it.
    const bad = await call('POST', '/tables/orders/schema', {
      changes: [
        { action: 'add-column', name: 'zone', type: 'string' },
        { action: 'set-partitioning', partitionBy: [{ column: 'zone' }] },
        { action: 'drop-column', name: 'nope' },
      ],
    });
    expect(bad.status).toBe(400);
    expect(bad.body!.error.index).toBe(2);
    expect((await call('GET', '/tables/orders')).body!.schemaId).toBe(0);
    const both = await call('POST', '/tables/orders/schema', {
      changes: [
        { action: 'add-column', name: 'zone', type: 'string' },
        { action: 'set-partitioning', partitionBy: [{ column: 'zone' }] },
      ],
    });
    expect(both.status, JSON.stringify(both.body)).toBe(200);
    expect(both.body!.schemaId).toBe(1);
    expect(both.body!.partitionSpecId).toBe(2);
    // Partitioned away from placed_at and dropping it in the same request: the partitioning
    // goes first. Files of the older specs keep their tuples (read in the column's old type).
    const away = await call('POST', '/tables/orders/schema', {
      changes: [
        { action: 'drop-column', name: 'placed_at' },
        { action: 'set-partitioning', partitionBy: [{ column: 'id', transform: 'bucket[2]' }] },
      ],
    });
    expect(away.status, JSON.stringify(away.body)).toBe(200);
    expect(away.body!.columns.map((c: { name: string }) => c.name)).toEqual(['id', 'region', 'ok', 'zone']);
    const d2 = (await call('GET', '/tables/orders')).body!;
    expect(d2.partitionSpecId).toBe(3);
    expect(d2.partitionBy).toEqual([{ column: 'id', transform: 'bucket[2]', name: 'id_bucket' }]);
    expect((await call('POST', '/tables/orders/flush', {})).status).toBe(200);
    const rows = (await call('GET', '/tables/orders/rows?limit=1000')).body!;
    expect(rows.rows).toHaveLength(61);
    const snap2 = await flushedSnapshot('orders', rows.lsn);
    expect(
      snap2.dataFiles.some(
        (f: { partition?: { placed_at_day?: number } }) => f.partition?.placed_at_day === 19844,
      ),
    ).toBe(true);
    await call('DELETE', `/leases/${snap2.leaseId}`);
  });

  it('creates partitioned, sorted tables through the Iceberg REST catalog', async () => {
    const r = await call('POST', '/iceberg/v1/namespaces/default/tables', {
      name: 'events',
      schema: {
        type: 'struct',
        'schema-id': 0,
        fields: [
          { id: 7, name: 'ts', required: false, type: 'timestamp' },
          { id: 9, name: 'kind', required: false, type: 'string' },
        ],
      },
      'partition-spec': {
        'spec-id': 0,
        fields: [{ name: 'ts_hour', transform: 'hour', 'source-id': 7, 'field-id': 1000 }],
      },
      'write-order': {
        'order-id': 1,
        fields: [{ transform: 'identity', 'source-id': 9, direction: 'desc', 'null-order': 'nulls-last' }],
      },
    });
    expect(r.status).toBe(200);
    const meta = r.body!.metadata;
    // Columns get the table's own ids; the spec and order follow them.
    const kindId = meta.schemas[0].fields.find((f: { name: string }) => f.name === 'kind').id;
    const tsId = meta.schemas[0].fields.find((f: { name: string }) => f.name === 'ts').id;
    expect(meta['partition-specs']).toEqual([
      { 'spec-id': 0, fields: [{ name: 'ts_hour', transform: 'hour', 'source-id': tsId, 'field-id': 1000 }] },
    ]);
    expect(meta['sort-orders']).toEqual([
      {
        'order-id': 1,
        fields: [
          { transform: 'identity', 'source-id': kindId, direction: 'desc', 'null-order': 'nulls-last' },
        ],
      },
    ]);
    expect(meta['default-sort-order-id']).toBe(1);
    const bad = await call('POST', '/iceberg/v1/namespaces/default/tables', {
      name: 'events2',
      schema: { type: 'struct', fields: [{ id: 1, name: 'k', required: false, type: 'boolean' }] },
      'partition-spec': {
        fields: [{ name: 'k_b', transform: 'bucket[2]', 'source-id': 1, 'field-id': 1000 }],
      },
    });
    expect(bad.status).toBe(400);
    expect(bad.body!.error.message).toMatch(/bucket\[2\] does not apply to a boolean/);
  });
});
