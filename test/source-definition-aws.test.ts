/**
 * On the AWS shape (`npm run local`: the functions reach the writer over its internal API), a
 * table with a Postgres source is defined by the writer, not the tables function — on AWS only
 * the writer tasks may read a source's secret (infra.test.ts checks the grants). Proven here,
 * against a real PostgreSQL: the tables function asks the writer for the definition (counted),
 * the table then streams its rows; a source that cannot be reached is the writer's 400
 * `invalid_source`, passed on as it is.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceConfigFromEnv } from '../lib/config.ts';
import { parseExactJson } from '../lib/schema/exact-json.ts';
import { silentLogger } from '../lib/util/logger.ts';
import { type LocalAws, startLocalAws } from '../localstack/local-aws.ts';
import { eventually, type PgCluster, startPostgres } from './support/postgres.ts';

let pgc: PgCluster;
let local: LocalAws;
let asked = 0;

beforeAll(async () => {
  pgc = await startPostgres();
  local = await startLocalAws(
    serviceConfigFromEnv({ PORT: '0', MOONLINK_SNAPSHOT_INTERVAL_MS: '100', MOONLINK_MAX_WAIT_MS: '20000' }),
    silentLogger,
    { shards: 1 },
  );
  const link = local.services.writer;
  const ask = link.definitionFromSource!.bind(link);
  link.definitionFromSource = (table, body) => {
    asked++;
    return ask(table, body);
  };
}, 120_000);
afterAll(async () => {
  await local?.close();
  await pgc?.stop();
});

async function call(method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(local.url + p, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? parseExactJson(text) : undefined };
}

describe('a Postgres source on the AWS shape', () => {
  it('is defined by the writer, then streams', async () => {
    await pgc.sql('CREATE TABLE items (id bigint PRIMARY KEY, name text)');
    await pgc.sql("INSERT INTO items VALUES (1, 'one'), (2, 'two')");
    const created = await call('POST', '/tables', {
      name: 'items',
      source: { postgres: { connection: pgc.url, table: 'public.items' } },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(asked).toBe(1);
    expect(created.body.columns.map((c: { name: string }) => c.name)).toEqual(['id', 'name']);
    expect(created.body.primaryKey).toEqual(['id']);
    await pgc.sql("INSERT INTO items VALUES (3, 'three')");
    await eventually(async () => {
      const r = await call('GET', '/tables/items/rows?limit=100');
      return r.status === 200 && r.body.rows.length === 3;
    }, 60_000);
    const r = await call('GET', '/tables/items/rows?limit=100');
    expect(r.body.rows.map((row: { name: string }) => row.name).sort()).toEqual(['one', 'three', 'two']);
  }, 120_000);

  it('a source the writer cannot reach is its 400, as it is', async () => {
    const r = await call('POST', '/tables', {
      name: 'nowhere',
      source: { postgres: { connection: 'postgres://postgres@127.0.0.1:1/postgres', table: 'public.items' } },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.error.code).toBe('invalid_source');
    expect(r.body.error.message).toMatch(/cannot connect to Postgres/);
    expect(asked).toBe(2);
    expect((await call('GET', '/tables/nowhere')).status).toBe(404);
  });
});
