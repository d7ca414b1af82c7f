/**
 * MOONLINK_API_TOKEN (functions/bearer-token.ts): the embedded service refuses to listen beyond
 * loopback without it; with it, every request but the liveness probe needs
 * `Authorization: Bearer <token>` (401 otherwise). Servers here listen on 127.0.0.1 only: the
 * refusal for HOST=0.0.0.0 happens before anything listens.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IcebergRestCatalog } from 'iceberg-js';
import { afterAll, describe, expect, it } from 'vitest';
import { bearerCheck, isLoopback } from '../functions/bearer-token.ts';
import { serviceConfigFromEnv } from '../lib/config.ts';
import { type EmbeddedService, startEmbedded } from '../lib/embedded/embedded-service.ts';
import { silentLogger } from '../lib/util/logger.ts';

let svc: EmbeddedService | undefined;
const dirs: string[] = [];
afterAll(async () => {
  await svc?.close({ flush: false });
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});
const tmp = async () => {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'mltoken-'));
  dirs.push(d);
  return d;
};

describe('API token', () => {
  it('checks bearer tokens exactly, whatever their length', () => {
    const ok = bearerCheck('s3cret-token');
    expect(ok('Bearer s3cret-token')).toBe(true);
    expect(ok('bearer s3cret-token')).toBe(true);
    expect(ok('Bearer s3cret-toke')).toBe(false);
    expect(ok('Bearer s3cret-token-and-more')).toBe(false);
    expect(ok('Basic s3cret-token')).toBe(false);
    expect(ok('s3cret-token')).toBe(false);
    expect(ok(undefined)).toBe(false);
    expect(ok('Bearer ')).toBe(false);
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].every(isLoopback)).toBe(true);
    expect(['0.0.0.0', '::', '10.0.0.5', '192.168.1.2'].some(isLoopback)).toBe(false);
  });

  it('refuses to serve beyond loopback without a token, before opening anything', async () => {
    const dir = await tmp();
    await expect(
      startEmbedded(
        serviceConfigFromEnv({ PORT: '0', HOST: '0.0.0.0', MOONLINK_DATA_DIR: dir }),
        silentLogger,
      ),
    ).rejects.toThrow(/MOONLINK_API_TOKEN/);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('answers 401 without the token, serves with it, and leaves the liveness probe open', async () => {
    svc = await startEmbedded(
      serviceConfigFromEnv({ PORT: '0', MOONLINK_DATA_DIR: await tmp(), MOONLINK_API_TOKEN: 's3cret-token' }),
      silentLogger,
    );
    const get = (p: string, auth?: string) =>
      fetch(svc!.url + p, { headers: auth ? { authorization: auth } : {} });
    const none = await get('/tables');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    expect((await get('/tables', 'Bearer wrong')).status).toBe(401);
    expect((await get('/health', 'Bearer wrong')).status).toBe(401);
    const ok = await get('/tables', 'Bearer s3cret-token');
    expect(ok.status).toBe(200);
    const created = await fetch(`${svc.url}/tables`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer s3cret-token' },
      body: JSON.stringify({
        name: 't',
        columns: [{ name: 'id', type: 'long', nullable: false }],
        primaryKey: ['id'],
      }),
    });
    expect(created.status).toBe(201);
    const refused = await fetch(`${svc.url}/tables/t/rows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ops: [{ op: 'insert', row: { id: 1 } }] }),
    });
    expect(refused.status).toBe(401);
    expect((await get('/health/live')).status).toBe(200);
    // The Iceberg REST catalog takes the same token as its OAuth2 bearer token (iceberg-js,
    // PyIceberg's `token` send it so); without it, 401 in the catalog's error shape.
    const withToken = new IcebergRestCatalog({
      baseUrl: `${svc.url}/iceberg`,
      auth: { type: 'bearer', token: 's3cret-token' },
    });
    expect(await withToken.listTables({ namespace: ['default'] })).toEqual([
      { namespace: ['default'], name: 't' },
    ]);
    const anonymous = await get('/iceberg/v1/namespaces');
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { type: string; code: number } }).error).toMatchObject({
      type: 'NotAuthorizedException',
      code: 401,
    });
  });
});
