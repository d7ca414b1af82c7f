/**
 * A writer group of two tasks (lib/aws/writer-group-member.ts) on the emulators: one active
 * writer holding the group's lease, one standby. Proven here:
 * - the standby answers `/health` 503 `standby` and forwards internal requests to the active
 *   writer, so functions that reach it (both tasks share the group's DNS name) are served;
 * - a drain of the active writer (SIGTERM in a rolling deploy) hands over at once: flushes and
 *   reads asked for all through the handover succeed (the functions wait out `writer_standby`
 *   answers), and nothing acknowledged is lost or doubled;
 * - after a crash (no drain, the lease left behind) the standby takes over once the lease
 *   expires and replays the stream since the last commit: every acknowledged row exactly once;
 * - a task whose lease another task took (it was paused past its TTL) stops itself.
 *
 * In-process tasks stand in for ECS tasks here (a crash is the writer closed without a flush
 * and the lease not released); the process-level crash and restart of one writer is in
 * aws-local.test.ts and writer-bundle.test.ts.
 */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AwsConfig } from '../lib/aws/aws-config.ts';
import { startWriterGroupMember, type WriterGroupMember } from '../lib/aws/writer-group-member.ts';
import { serviceConfigFromEnv } from '../lib/config.ts';
import { parseExactJson } from '../lib/schema/exact-json.ts';
import { silentLogger } from '../lib/util/logger.ts';
import { type Emulators, startEmulators } from '../localstack/emulators.ts';
import { startLocalFunctions } from '../localstack/local-aws.ts';

const LEASE_TTL_MS = 1500;
const service = serviceConfigFromEnv({
  PORT: '0',
  MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
  MOONLINK_COMMIT_INTERVAL_MS: '600000',
  MOONLINK_MAX_WAIT_MS: '20000',
});

let emu: Emulators;
let config: AwsConfig;
const members: WriterGroupMember[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  emu = await startEmulators({ kinesisShards: 1 });
  config = {
    region: 'us-east-1',
    bucket: emu.s3.bucket,
    prefix: 'warehouse',
    catalogTable: emu.dynamodb.table,
    stream: emu.kinesis.stream,
    endpoints: { s3: emu.s3.endpoint, dynamodb: emu.dynamodb.endpoint, kinesis: emu.kinesis.endpoint },
    writerUrlTemplate: '',
    writerGroups: 1,
    writerGroup: 0,
  };
}, 60_000);
afterAll(async () => {
  for (const c of closers.reverse()) await c();
  for (const m of members) await m.crash().catch(() => undefined);
  await emu?.stop();
});

let lostLeases = 0;
async function member(): Promise<WriterGroupMember> {
  const m = await startWriterGroupMember(
    config,
    service.engine,
    silentLogger,
    { port: 0, host: '127.0.0.1', syncIntervalMs: 500 },
    { leaseTtlMs: LEASE_TTL_MS, pollMs: 100, onLeaseLost: () => lostLeases++ },
  );
  members.push(m);
  return m;
}

/** The functions (public API), reaching the writer group at `writerUrl`. */
async function functionsAt(writerUrl: string) {
  const api = await startLocalFunctions(service, { ...config, writerUrlTemplate: writerUrl }, silentLogger);
  closers.push(() => api.close());
  const call = async (method: string, p: string, body?: unknown) => {
    const r = await fetch(api.server.url + p, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, body: text ? parseExactJson(text) : undefined } as {
      status: number;
      body: any;
    };
  };
  return { call };
}

async function health(m: WriterGroupMember): Promise<{ status: number; body: any }> {
  const r = await fetch(`${m.url}/health`);
  return { status: r.status, body: await r.json() };
}

describe('a writer group with a standby', () => {
  it('forwards from the standby, hands over at once on a drain and after a crash once the lease expires; every row exactly once', async () => {
    const a = await member();
    await a.active;
    const b = await member();
    await new Promise((r) => setTimeout(r, 300));
    expect(b.role()).toBe('standby');
    expect((await health(b)).status).toBe(503);
    expect((await health(b)).body.status).toBe('standby');
    expect((await health(a)).status).toBe(200);

    // The functions reach the standby: it forwards to the active writer.
    const fb = await functionsAt(b.url);
    const created = await fb.call('POST', '/tables', {
      name: 'orders',
      columns: [
        { name: 'id', type: 'long' },
        { name: 'v', type: 'long' },
      ],
      primaryKey: ['id'],
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    let next = 0;
    let lastLsn: unknown = 0;
    const write = async (count: number) => {
      const ops = Array.from({ length: count }, () => ({ op: 'insert', row: { id: next, v: next++ * 10 } }));
      const r = await fb.call('POST', '/tables/orders/rows', { ops });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      lastLsn = r.body.lsn;
    };
    const readIds = async (call = fb.call) => {
      const r = await call('GET', `/tables/orders/rows?minLsn=${lastLsn}&limit=100000`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return (r.body.rows as { id: bigint }[]).map((row) => Number(row.id)).sort((x, y) => x - y);
    };
    const all = () => Array.from({ length: next }, (_, i) => i);
    await write(20);
    expect(await readIds()).toEqual(all());
    const flushed = await fb.call('POST', '/tables/orders/flush');
    expect(flushed.status, JSON.stringify(flushed.body)).toBe(200);
    expect((await fb.call('GET', '/tables/orders')).status).toBe(200);

    // A drain (SIGTERM in a rolling deploy): writes, reads and flushes keep being answered.
    await write(10);
    const drainStarted = Date.now();
    const drained = a.close();
    const answers: number[] = [];
    let takeoverMs = 0;
    while (b.role() !== 'active' || answers.length < 3) {
      await write(2);
      const f = await fb.call('POST', '/tables/orders/flush');
      answers.push(f.status);
      expect(await readIds()).toEqual(all());
      if (b.role() === 'active' && takeoverMs === 0) takeoverMs = Date.now() - drainStarted;
      expect(Date.now() - drainStarted).toBeLessThan(30_000);
    }
    await drained;
    expect(answers.every((s) => s === 200)).toBe(true);
    expect(takeoverMs).toBeLessThan(10_000);
    expect((await health(b)).status).toBe(200);
    console.log(`drain handover: the standby was active ${takeoverMs} ms after the drain began`);

    // A crash: no flush, the lease left to expire. Rows written since the last commit are
    // only in the stream; the new active writer replays them.
    const c = await member();
    await new Promise((r) => setTimeout(r, 300));
    expect(c.role()).toBe('standby');
    const fc = await functionsAt(c.url);
    await write(15);
    const crashedAt = Date.now();
    await b.crash();
    expect(await readIds(fc.call)).toEqual(all());
    const waited = Date.now() - crashedAt;
    expect(c.role()).toBe('active');
    expect(waited).toBeGreaterThanOrEqual(LEASE_TTL_MS / 2);
    console.log(
      `crash takeover: a read after the crash was answered in ${waited} ms (lease TTL ${LEASE_TTL_MS} ms)`,
    );
    const again = await fc.call('POST', '/tables/orders/flush');
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(await readIds(fc.call)).toEqual(all());
    expect(lostLeases).toBe(0);
    await c.close();
  }, 120_000);

  it('a task whose lease another task took stops itself', async () => {
    const d = await member();
    await d.active;
    const before = lostLeases;
    await emu.clients.dynamodb.send(
      new PutItemCommand({
        TableName: config.catalogTable,
        Item: {
          pk: { S: 'WRITER#0' },
          sk: { S: 'WRITER_LEASE' },
          holder: { S: 'another-task' },
          url: { S: 'http://127.0.0.1:1' },
          expiresAt: { N: String(Date.now() + 60_000) },
        },
      }),
    );
    const until = Date.now() + LEASE_TTL_MS * 2;
    while (lostLeases === before && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(lostLeases).toBe(before + 1);
    await d.crash();
  }, 30_000);
});
