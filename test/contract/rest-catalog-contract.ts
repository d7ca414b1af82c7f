/**
 * The Iceberg REST catalog, seen by real outside clients: `iceberg-js` (Supabase's REST
 * catalog client, spec-pinned) drives it, `icebird` reads the tables at the locations it
 * serves, and plain fetch checks what iceberg-js has no call for (config, paging, ETag/304,
 * namespace properties, refused commits, the error shape). Every deployment runs the same
 * checks: embedded (iceberg-rest-catalog.test.ts) and the AWS shape on emulators
 * (iceberg-rest-catalog-aws.test.ts).
 */
import { IcebergError, IcebergRestCatalog } from 'iceberg-js';
import { icebergRead } from 'icebird';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseExactJson } from '../../lib/schema/exact-json.ts';
import { installLocationFetch, type LocationMap } from '../support/location-fetch.ts';

export interface RestCatalogFixture {
  url: string;
  /** How readers reach the table locations the service writes (s3:// on the emulators). */
  locations?: LocationMap;
  /** Object keys under the store, to check the namespace layout. */
  listKeys(prefix: string): Promise<string[]>;
  close(): Promise<void>;
}

export function restCatalogContract(name: string, start: () => Promise<RestCatalogFixture>): void {
  describe(`Iceberg REST catalog: ${name}`, () => {
    let f: RestCatalogFixture;
    let catalog: IcebergRestCatalog;
    let uninstall: () => void;
    beforeAll(async () => {
      f = await start();
      uninstall = installLocationFetch(f.locations);
      catalog = new IcebergRestCatalog({ baseUrl: `${f.url}/iceberg`, auth: { type: 'none' } });
    }, 120_000);
    afterAll(async () => {
      uninstall?.();
      await f?.close();
    });

    async function call(method: string, p: string, body?: unknown, headers: Record<string, string> = {}) {
      const res = await fetch(f.url + p, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return {
        status: res.status,
        headers: res.headers,
        body: text ? (parseExactJson(text) as any) : undefined,
      };
    }

    async function icebergStatus(p: Promise<unknown>): Promise<number> {
      try {
        await p;
        return 200;
      } catch (e) {
        if (e instanceof IcebergError) return e.status;
        throw e;
      }
    }

    async function ourRows(table: string): Promise<string[]> {
      const flush = await call('POST', `/tables/${table}/flush`);
      expect(flush.status, JSON.stringify(flush.body)).toBe(200);
      const r = await call('GET', `/tables/${table}/rows?minLsn=${flush.body.lsn}&limit=100000`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return (r.body.rows as Record<string, unknown>[])
        .map((x) => JSON.stringify([String(x.id), x.note ?? null]))
        .sort();
    }

    it('config, namespaces: list, create with properties, load, head, update, refuse a duplicate', async () => {
      const config = await call('GET', '/iceberg/v1/config');
      expect(config.status).toBe(200);
      expect(config.body.defaults).toEqual({});
      expect(config.body.endpoints).toContain('GET /v1/{prefix}/namespaces/{namespace}/tables/{table}');

      expect(await catalog.listNamespaces()).toContainEqual({ namespace: ['default'] });
      const created = await catalog.createNamespace(
        { namespace: ['analytics'] },
        { properties: { owner: 'data' } },
      );
      expect(created).toEqual({ namespace: ['analytics'], properties: { owner: 'data' } });
      expect(await catalog.loadNamespaceMetadata({ namespace: ['analytics'] })).toEqual({
        properties: { owner: 'data' },
      });
      expect(await catalog.namespaceExists({ namespace: ['analytics'] })).toBe(true);
      expect(await catalog.namespaceExists({ namespace: ['nope'] })).toBe(false);
      expect(await icebergStatus(catalog.createNamespace({ namespace: ['analytics'] }))).toBe(409);
      expect(await icebergStatus(catalog.createNamespace({ namespace: ['a', 'b'] }))).toBe(406);

      const upd = await call('POST', '/iceberg/v1/namespaces/analytics/properties', {
        updates: { team: 'growth' },
        removals: ['owner', 'absent'],
      });
      expect(upd.status).toBe(200);
      expect(upd.body).toEqual({ updated: ['team'], removed: ['owner'], missing: ['absent'] });
      expect((await catalog.loadNamespaceMetadata({ namespace: ['analytics'] })).properties).toEqual({
        team: 'growth',
      });
      const dup = await call('POST', '/iceberg/v1/namespaces/analytics/properties', {
        updates: { a: '1' },
        removals: ['a'],
      });
      expect(dup.status).toBe(422);

      // Paging: one namespace per page, every one seen once.
      await catalog.createNamespace({ namespace: ['zeta'] });
      const seen: string[] = [];
      let token: string | undefined;
      do {
        const p = await call('GET', `/iceberg/v1/namespaces?pageSize=1${token ? `&pageToken=${token}` : ''}`);
        expect(p.status).toBe(200);
        expect(p.body.namespaces.length).toBeLessThanOrEqual(1);
        seen.push(...p.body.namespaces.map((n: string[]) => n[0]));
        token = p.body['next-page-token'];
      } while (token);
      expect(seen).toEqual(['analytics', 'default', 'zeta']);
      expect((await call('GET', '/iceberg/v1/namespaces?parent=analytics')).body).toEqual({ namespaces: [] });
      expect((await call('GET', '/iceberg/v1/namespaces?parent=nope')).status).toBe(404);
      await catalog.dropNamespace({ namespace: ['zeta'] });
    });

    it('serves a table of ours (ns.name): list, load with ETag, and icebird reads what our scan returns', async () => {
      const created = await call('POST', '/tables', {
        name: 'analytics.events',
        columns: [
          { name: 'id', type: 'long' },
          { name: 'note', type: 'string' },
        ],
        primaryKey: ['id'],
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body.name).toBe('analytics.events');
      expect(String(created.body.metadataLocation)).toMatch(
        /tables\/analytics\/events\/metadata\/v1\.metadata\.json$/,
      );
      const w = await call('POST', '/tables/analytics.events/rows', {
        ops: [
          ...Array.from({ length: 50 }, (_, i) => ({ op: 'insert', row: { id: i, note: `n${i}` } })),
          { op: 'delete', row: { id: 7 } },
          { op: 'upsert', row: { id: 8, note: 'changed' } },
        ],
      });
      expect(w.status, JSON.stringify(w.body)).toBe(200);
      const expected = await ourRows('analytics.events');
      expect(expected).toHaveLength(49);
      expect((await f.listKeys('tables/analytics/events/data/')).length).toBeGreaterThan(0);

      expect(await catalog.listTables({ namespace: ['analytics'] })).toEqual([
        { namespace: ['analytics'], name: 'events' },
      ]);
      expect(await catalog.tableExists({ namespace: ['analytics'], name: 'events' })).toBe(true);
      expect(await catalog.tableExists({ namespace: ['analytics'], name: 'nope' })).toBe(false);
      const meta = await catalog.loadTable({ namespace: ['analytics'], name: 'events' });
      expect(meta.schemas[0].fields.map((x) => x.name)).toEqual(['id', 'note']);

      const load = await call('GET', '/iceberg/v1/namespaces/analytics/tables/events');
      expect(load.status).toBe(200);
      const described = await call('GET', '/tables/analytics.events');
      expect(load.body['metadata-location']).toBe(described.body.metadataLocation);
      const etag = load.headers.get('etag');
      expect(etag).toMatch(/^".+"$/);
      expect(
        (
          await call('GET', '/iceberg/v1/namespaces/analytics/tables/events', undefined, {
            'if-none-match': etag!,
          })
        ).status,
      ).toBe(304);

      const location = String(load.body['metadata-location']);
      const rows = (await icebergRead({
        tableUrl: location.slice(0, location.indexOf('/metadata/')),
        metadata: load.body.metadata,
      })) as Record<string, unknown>[];
      expect(rows.map((x) => JSON.stringify([String(x.id), x.note ?? null])).sort()).toEqual(expected);
    });

    it('creates a table through the catalog, then our API writes to it', async () => {
      const meta = await catalog.createTable(
        { namespace: ['analytics'] },
        {
          name: 'orders',
          schema: {
            type: 'struct',
            fields: [
              { id: 1, name: 'id', type: 'long', required: true },
              { id: 2, name: 'note', type: 'string', required: false },
            ],
            'schema-id': 0,
            'identifier-field-ids': [1],
          },
          properties: { owner: 'sales' },
        },
      );
      expect(meta.properties.owner).toBe('sales');
      expect(meta.schemas[0]['identifier-field-ids']).toEqual([1]);
      const described = await call('GET', '/tables/analytics.orders');
      expect(described.body.primaryKey).toEqual(['id']);
      const w = await call('POST', '/tables/analytics.orders/rows', {
        ops: [
          { op: 'upsert', row: { id: 1, note: 'a' } },
          { op: 'upsert', row: { id: 1, note: 'b' } },
          { op: 'insert', row: { id: 2, note: null } },
        ],
      });
      expect(w.status, JSON.stringify(w.body)).toBe(200);
      expect(await ourRows('analytics.orders')).toEqual([
        JSON.stringify(['1', 'b']),
        JSON.stringify(['2', null]),
      ]);
      expect(
        await icebergStatus(
          catalog.createTable(
            { namespace: ['analytics'] },
            {
              name: 'orders',
              schema: { type: 'struct', fields: [{ id: 1, name: 'id', type: 'long', required: true }] },
            },
          ),
        ),
      ).toBe(409);
      expect(
        await icebergStatus(
          catalog.createTable(
            { namespace: ['nope'] },
            {
              name: 't',
              schema: { type: 'struct', fields: [{ id: 1, name: 'id', type: 'long', required: true }] },
            },
          ),
        ),
      ).toBe(404);
    });

    it('commits table properties (requirements checked) and refuses every other update', async () => {
      const before = await call('GET', '/iceberg/v1/namespaces/analytics/tables/orders');
      const uuid = before.body.metadata['table-uuid'];
      const res = await catalog.updateTable({ namespace: ['analytics'], name: 'orders' }, {
        requirements: [{ type: 'assert-table-uuid', uuid }],
        updates: [
          { action: 'set-properties', updates: { comment: 'orders from the shop', owner: 'finance' } },
        ],
      } as never);
      expect(res.metadata.properties.owner).toBe('finance');
      expect(res['metadata-location']).not.toBe(before.body['metadata-location']);
      const removed = await call('POST', '/iceberg/v1/namespaces/analytics/tables/orders', {
        requirements: [],
        updates: [{ action: 'remove-properties', removals: ['comment'] }],
      });
      expect(removed.status, JSON.stringify(removed.body)).toBe(200);
      expect(removed.body.metadata.properties.comment).toBeUndefined();
      expect(removed.body.metadata.properties.owner).toBe('finance');
      // The snapshot is the same: a properties commit adds none.
      expect(removed.body.metadata['current-snapshot-id']).toBe(before.body.metadata['current-snapshot-id']);
      const at = removed.body['metadata-location'];

      const refusals: [unknown, number, string][] = [
        [
          {
            requirements: [{ type: 'assert-table-uuid', uuid: 'x' }],
            updates: [{ action: 'set-properties', updates: { a: '1' } }],
          },
          409,
          'CommitFailedException',
        ],
        [{ requirements: [{ type: 'assert-create' }], updates: [] }, 409, 'CommitFailedException'],
        [
          { requirements: [], updates: [{ action: 'add-snapshot', snapshot: {} }] },
          406,
          'UnsupportedOperationException',
        ],
        [
          { requirements: [], updates: [{ action: 'add-schema', schema: {} }] },
          406,
          'UnsupportedOperationException',
        ],
        [
          {
            requirements: [],
            updates: [{ action: 'set-properties', updates: { 'write.format.default': 'orc' } }],
          },
          400,
          'BadRequestException',
        ],
        [{ requirements: [], updates: [{ action: 'frobnicate' }] }, 400, 'BadRequestException'],
        [{ requirements: [{ type: 'assert-nothing' }], updates: [] }, 400, 'BadRequestException'],
        [{ updates: [] }, 400, 'BadRequestException'],
      ];
      for (const [body, status, type] of refusals) {
        const r = await call('POST', '/iceberg/v1/namespaces/analytics/tables/orders', body);
        expect(r.status, JSON.stringify(body)).toBe(status);
        expect(r.body.error.type).toBe(type);
        expect(r.body.error.code).toBe(status);
        expect(typeof r.body.error.message).toBe('string');
      }
      const after = await call('GET', '/iceberg/v1/namespaces/analytics/tables/orders');
      expect(after.body['metadata-location']).toBe(at);
    });

    it('malformed bodies and paths are 4xx in the ErrorModel shape and change nothing', async () => {
      const state = async () =>
        JSON.stringify([
          (await call('GET', '/iceberg/v1/namespaces')).body,
          (await call('GET', '/iceberg/v1/namespaces/analytics/tables')).body,
          (await call('GET', '/iceberg/v1/namespaces/analytics/tables/orders')).body['metadata-location'],
          (await call('GET', '/iceberg/v1/namespaces/analytics')).body,
        ]);
      const before = await state();
      let seed = 42;
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed % n;
      };
      const paths = [
        '/iceberg/v1/namespaces',
        '/iceberg/v1/namespaces/analytics/properties',
        '/iceberg/v1/namespaces/analytics/tables',
        '/iceberg/v1/namespaces/analytics/tables/orders',
        '/iceberg/v1/namespaces/%ZZ/tables',
        '/iceberg/v1/namespaces/a%1Fb/tables/x',
        '/iceberg/v1/namespaces/1bad',
        '/iceberg/v1/namespaces/analytics/tables/..%2F..',
        '/iceberg/v1/tables/rename',
        '/iceberg/v1/nothing',
      ];
      const bodies: unknown[] = [
        '{',
        '[]',
        'null',
        '"x"',
        { namespace: 'analytics' },
        { namespace: [] },
        { namespace: [1] },
        { name: 'x' },
        { name: '', schema: { fields: [] } },
        {
          name: 'bad name',
          schema: { type: 'struct', fields: [{ id: 1, name: 'id', type: 'long', required: true }] },
        },
        {
          name: 'ok',
          schema: { type: 'struct', fields: [{ id: 1, name: 'id', type: 'nonsense', required: true }] },
        },
        {
          name: 'ok',
          location: '/elsewhere',
          schema: { type: 'struct', fields: [{ id: 1, name: 'id', type: 'long' }] },
        },
        {
          name: 'ok',
          schema: { type: 'struct', fields: [{ id: 1, name: 'id', type: 'long' }] },
          'partition-spec': { fields: [{ 'source-id': 1 }] },
        },
        { updates: { a: 1 }, removals: 'x' },
        { requirements: 'x', updates: [] },
        { requirements: [], updates: [{ action: 'set-properties', updates: { a: 5 } }] },
        // A rename onto a taken name, or from a table that is not there.
        {
          source: { namespace: ['analytics'], name: 'orders' },
          destination: { namespace: ['analytics'], name: 'events' },
        },
        {
          source: { namespace: ['analytics'], name: 'nothere' },
          destination: { namespace: ['analytics'], name: 'o2' },
        },
        { source: { namespace: 'analytics', name: 'orders' }, destination: {} },
      ];
      for (let i = 0; i < 120; i++) {
        const p = paths[rand(paths.length)];
        const b = bodies[rand(bodies.length)];
        const r = await call('POST', p, b);
        expect(r.status, `${p} ${JSON.stringify(b)}: ${JSON.stringify(r.body)}`).toBeGreaterThanOrEqual(400);
        expect(r.status, `${p} ${JSON.stringify(b)}`).toBeLessThan(500);
        expect(r.body.error.code).toBe(r.status);
        expect(typeof r.body.error.type).toBe('string');
      }
      expect(await state()).toBe(before);
    });

    it('renames a table: same metadata and files under the new name, spec errors, and back again', async () => {
      const rename = (source: unknown, destination: unknown) =>
        call('POST', '/iceberg/v1/tables/rename', { source, destination });
      const src = { namespace: ['analytics'], name: 'events' };
      const dst = { namespace: ['archive'], name: 'old_events' };
      const before = await call('GET', '/iceberg/v1/namespaces/analytics/tables/events');
      const rowsBefore = await ourRows('analytics.events');
      // The destination's namespace must exist (NoSuchNamespaceException), the source too.
      const noNs = await rename(src, dst);
      expect(noNs.status).toBe(404);
      expect(noNs.body.error).toMatchObject({ type: 'NoSuchNamespaceException', code: 404 });
      const noTable = await rename({ namespace: ['analytics'], name: 'missing' }, dst);
      expect(noTable.status).toBe(404);
      expect(noTable.body.error.type).toBe('NoSuchTableException');
      await catalog.createNamespace({ namespace: ['archive'] });
      const taken = await rename(src, { namespace: ['analytics'], name: 'orders' });
      expect(taken.status).toBe(409);
      expect(taken.body.error.type).toBe('AlreadyExistsException');
      expect((await rename(src, { namespace: ['archive'], name: 'bad name' })).status).toBe(400);

      expect((await rename(src, dst)).status).toBe(204);
      expect(await catalog.tableExists(src)).toBe(false);
      expect(await catalog.listTables({ namespace: ['archive'] })).toEqual([dst]);
      const moved = await call('GET', '/iceberg/v1/namespaces/archive/tables/old_events');
      expect(moved.status).toBe(200);
      // The same files: a rename moves the name, not the objects (engines holding the old
      // metadata location keep reading).
      const location = String(moved.body['metadata-location']);
      expect(location.slice(0, location.indexOf('/metadata/'))).toBe(
        String(before.body['metadata-location']).slice(
          0,
          String(before.body['metadata-location']).indexOf('/metadata/'),
        ),
      );
      const rows = (await icebergRead({
        tableUrl: location.slice(0, location.indexOf('/metadata/')),
        metadata: moved.body.metadata,
      })) as Record<string, unknown>[];
      expect(rows.map((x) => JSON.stringify([String(x.id), x.note ?? null])).sort()).toEqual(rowsBefore);
      // Our API writes to it under the new name.
      const w = await call('POST', '/tables/archive.old_events/rows', {
        ops: [{ op: 'insert', row: { id: 900, note: 'after' } }],
      });
      expect(w.status, JSON.stringify(w.body)).toBe(200);
      expect(await ourRows('archive.old_events')).toEqual(
        [...rowsBefore, JSON.stringify(['900', 'after'])].sort(),
      );

      expect((await rename(dst, src)).status).toBe(204);
      expect(await catalog.tableExists(dst)).toBe(false);
      expect((await ourRows('analytics.events')).length).toBe(rowsBefore.length + 1);
      await catalog.dropNamespace({ namespace: ['archive'] });
    }, 120_000);

    it('refuses to drop a namespace with tables, then drops tables and the namespace', async () => {
      expect(await icebergStatus(catalog.dropNamespace({ namespace: ['analytics'] }))).toBe(409);
      expect(await icebergStatus(catalog.dropNamespace({ namespace: ['default'] }))).toBe(409);
      // A namespace may not take the name of a table of the default namespace (shared prefix).
      const t = await call('POST', '/tables', { name: 'clash', columns: [{ name: 'id', type: 'long' }] });
      expect(t.status, JSON.stringify(t.body)).toBe(201);
      expect(await icebergStatus(catalog.createNamespace({ namespace: ['clash'] }))).toBe(409);
      expect(
        (await call('POST', '/tables', { name: 'analytics', columns: [{ name: 'id', type: 'long' }] }))
          .status,
      ).toBe(409);
      expect((await call('DELETE', '/tables/clash')).status).toBe(204);

      await catalog.dropTable({ namespace: ['analytics'], name: 'orders' }, { purge: true });
      expect(await catalog.tableExists({ namespace: ['analytics'], name: 'orders' })).toBe(false);
      expect(await f.listKeys('tables/analytics/orders/')).toEqual([]);
      // Without purge the Iceberg files stay for engines that still refer to them.
      await catalog.dropTable({ namespace: ['analytics'], name: 'events' });
      expect((await call('GET', '/tables/analytics.events')).status).toBe(404);
      expect((await f.listKeys('tables/analytics/events/metadata/')).length).toBeGreaterThan(0);
      expect(await icebergStatus(catalog.loadTable({ namespace: ['analytics'], name: 'events' }))).toBe(404);
      await catalog.dropNamespace({ namespace: ['analytics'] });
      expect(await catalog.namespaceExists({ namespace: ['analytics'] })).toBe(false);
      expect(await icebergStatus(catalog.listTables({ namespace: ['analytics'] }))).toBe(404);
    });
  });
}
