/** The Iceberg REST catalog of the embedded service (`npm start`), driven by outside clients. */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { serviceConfigFromEnv } from '../lib/config.ts';
import { startEmbedded } from '../lib/embedded/embedded-service.ts';
import { silentLogger } from '../lib/util/logger.ts';
import { restCatalogContract } from './contract/rest-catalog-contract.ts';

restCatalogContract('embedded', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlrest-'));
  const svc = await startEmbedded(
    serviceConfigFromEnv({
      PORT: '0',
      MOONLINK_DATA_DIR: dir,
      MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
      MOONLINK_COMMIT_INTERVAL_MS: '600000',
    }),
    silentLogger,
  );
  return {
    url: svc.url,
    listKeys: async (prefix) => {
      const keys: string[] = [];
      for await (const o of svc.services.store.list(prefix)) keys.push(o.key);
      return keys;
    },
    close: async () => {
      await svc.close({ flush: false });
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
});

describe('table properties from the REST catalog, with writes in flight', () => {
  it('go into the next commit with the data, and are there after a restart', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlrest-props-'));
    const config = serviceConfigFromEnv({
      PORT: '0',
      MOONLINK_DATA_DIR: dir,
      MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
      MOONLINK_COMMIT_INTERVAL_MS: '600000',
    });
    const call = async (url: string, method: string, p: string, body?: unknown) => {
      const r = await fetch(url + p, {
        method,
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : undefined };
    };
    let svc = await startEmbedded(config, silentLogger);
    try {
      expect(
        (await call(svc.url, 'POST', '/tables', { name: 'ns1.t', columns: [{ name: 'id', type: 'long' }] }))
          .status,
      ).toBe(201);
      const before = await call(svc.url, 'GET', '/iceberg/v1/namespaces/ns1/tables/t');
      expect(before.body.metadata['current-snapshot-id']).toBe(-1);
      // Rows acknowledged but not committed yet: the properties commit carries them too.
      const w = await call(svc.url, 'POST', '/tables/ns1.t/rows', {
        ops: Array.from({ length: 100 }, (_, i) => ({ op: 'insert', row: { id: i } })),
      });
      expect(w.status).toBe(200);
      const [a, b] = await Promise.all([
        call(svc.url, 'POST', '/iceberg/v1/namespaces/ns1/tables/t', {
          requirements: [],
          updates: [{ action: 'set-properties', updates: { a: '1' } }],
        }),
        call(svc.url, 'POST', '/iceberg/v1/namespaces/ns1/tables/t', {
          requirements: [],
          updates: [{ action: 'set-properties', updates: { b: '2' } }],
        }),
      ]);
      expect([a.status, b.status]).toEqual([200, 200]);
      const after = await call(svc.url, 'GET', '/iceberg/v1/namespaces/ns1/tables/t');
      expect(after.body.metadata.properties).toMatchObject({ a: '1', b: '2', 'moonlink.table': 'ns1.t' });
      expect(after.body.metadata['current-snapshot-id']).not.toBe(-1);
      await svc.close({ flush: false });
      svc = await startEmbedded(config, silentLogger);
      const reopened = await call(svc.url, 'GET', '/iceberg/v1/namespaces/ns1/tables/t');
      expect(reopened.body['metadata-location']).toBe(after.body['metadata-location']);
      expect(reopened.body.metadata.properties).toMatchObject({ a: '1', b: '2' });
      const listed = await call(svc.url, 'GET', '/tables');
      expect(listed.body.tables.map((t: { name: string }) => t.name)).toEqual(['ns1.t']);
    } finally {
      await svc.close({ flush: false });
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
