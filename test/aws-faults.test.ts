/**
 * Fault injection below the AWS SDK: a request handler wrapping NodeHttpHandler answers some
 * requests itself with throttling (400 ThrottlingException / ProvisionedThroughputExceeded,
 * 503 SlowDown) or 500s, times some out (before or after forwarding them), and loses the
 * response of some after forwarding them (the service did the work; the client sees a reset).
 * Decisions come from a seeded PRNG (FAULT_SEEDS=1,2,3 by default; a failure names its seed).
 *
 * Shown: with the adapters' retries the outcome converges. Objects are written once with the
 * right bytes; catalog compare-and-swap sequences end at the right pointer with no lost or
 * doubled update, epochs and lease put/delete are idempotent; every Kinesis transaction is
 * delivered exactly once, at the LSN its append returned, although PutRecord is not idempotent
 * and lost responses leave duplicate records in the stream.
 *
 * Emulator gaps: s3rver ignores If-None-Match, so this handler enforces it for the test (a HEAD
 * before forwarding a conditional PUT or CompleteMultipartUpload; not atomic, fine here as the
 * test does not race conditional writes). dynalite has no TTL (leases carry `ttl` anyway).
 */

import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { HttpRequest, HttpResponse } from '@smithy/core/transport';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FencedError, type TablePointer } from '../lib/catalog/catalog.ts';
import { DynamoDbCatalog } from '../lib/catalog/dynamodb-catalog.ts';
import { PointerKeeper } from '../lib/engine/pointer-keeper.ts';
import type { LogEntry } from '../lib/log/durable-log.ts';
import { KinesisLog } from '../lib/log/kinesis-log.ts';
import { encodeTransaction } from '../lib/log/kinesis-records.ts';
import { hashKeyOf, shardChain } from '../lib/log/kinesis-shards.ts';
import type { Lsn } from '../lib/lsn.ts';
import { asLsn } from '../lib/lsn.ts';
import { listAll, PreconditionFailedError } from '../lib/store/object-store.ts';
import { S3ObjectStore } from '../lib/store/s3-object-store.ts';
import {
  dynamoDbClientFor,
  type Emulators,
  kinesisClientFor,
  s3ClientFor,
  startEmulators,
  uniqueName,
} from '../localstack/emulators.ts';
import { tableDef, uniqueTable } from './contract/catalog-contract.ts';
import { waitUntil } from './contract/log-contract.ts';

// ---------------------------------------------------------------- the fault-injecting handler

type Fault = 'throttle' | 'server' | 'timeoutBefore' | 'timeoutAfter' | 'lost';

interface RequestInfo {
  service: 's3' | 'dynamodb' | 'kinesis';
  /** `Kinesis_20131202.PutRecord`, `DynamoDB_20120810.UpdateItem`, or `PUT /bucket/key?…` for S3. */
  operation: string;
}

type Decide = (info: RequestInfo) => Fault | undefined;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Rates {
  throttle: number;
  server: number;
  timeoutBefore: number;
  timeoutAfter: number;
  lost: number;
}

function seeded(seed: number, rates: Rates, applies: (i: RequestInfo) => boolean = () => true): Decide {
  const rng = mulberry32(seed);
  return (info) => {
    if (!applies(info)) return undefined;
    let r = rng();
    for (const k of ['throttle', 'server', 'timeoutBefore', 'timeoutAfter', 'lost'] as const) {
      if (r < rates[k]) return k;
      r -= rates[k];
    }
    return undefined;
  };
}

function header(req: HttpRequest, name: string): string | undefined {
  for (const [k, v] of Object.entries(req.headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

function errorResponse(info: RequestInfo, fault: 'throttle' | 'server'): HttpResponse {
  if (info.service === 's3') {
    const [status, code] = fault === 'throttle' ? [503, 'SlowDown'] : [500, 'InternalError'];
    const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected</Message></Error>`;
    return new HttpResponse({
      statusCode: status,
      headers: { 'content-type': 'application/xml' },
      body: Readable.from([Buffer.from(xml)]),
    });
  }
  const type =
    fault === 'server'
      ? info.service === 'kinesis'
        ? 'InternalFailure'
        : 'InternalServerError'
      : info.service === 'kinesis'
        ? 'ProvisionedThroughputExceededException'
        : 'ThrottlingException';
  const ns = info.service === 'dynamodb' ? 'com.amazonaws.dynamodb.v20120810#' : '';
  return new HttpResponse({
    statusCode: fault === 'server' ? 500 : 400,
    headers: {
      'content-type':
        info.service === 'kinesis' ? 'application/x-amz-json-1.1' : 'application/x-amz-json-1.0',
      'x-amzn-errortype': type,
    },
    body: Readable.from([Buffer.from(JSON.stringify({ __type: `${ns}${type}`, message: 'injected' }))]),
  });
}

async function drain(body: unknown): Promise<void> {
  if (body && typeof (body as Readable).resume === 'function') {
    const r = body as Readable;
    await new Promise<void>((resolve) => {
      r.on('end', resolve);
      r.on('error', () => resolve());
      r.resume();
    });
  }
}

class FaultInjectingHandler {
  readonly metadata = { handlerProtocol: 'http/1.1' };
  readonly inner = new NodeHttpHandler({
    connectionTimeout: 2000,
    requestTimeout: 15_000,
    throwOnRequestTimeout: true,
  });
  readonly counts: Record<string, number> = {};
  /** Operations whose response was lost after the service did them. */
  readonly landedAndLost: string[] = [];
  enabled = true;

  constructor(
    private readonly decide: Decide,
    private readonly enforceS3Conditions = false,
  ) {}

  private info(req: HttpRequest): RequestInfo {
    const target = header(req, 'x-amz-target');
    if (target?.startsWith('Kinesis')) return { service: 'kinesis', operation: target };
    if (target?.startsWith('DynamoDB')) return { service: 'dynamodb', operation: target };
    return {
      service: 's3',
      operation: `${req.method} ${req.path}?${Object.keys(req.query ?? {}).join('&')}`,
    };
  }

  async handle(req: HttpRequest, options?: { abortSignal?: AbortSignal; requestTimeout?: number }) {
    const info = this.info(req);
    const fault = this.enabled ? this.decide(info) : undefined;
    if (fault) this.counts[fault] = (this.counts[fault] ?? 0) + 1;
    if (fault === 'throttle' || fault === 'server') return { response: errorResponse(info, fault) };
    if (fault === 'timeoutBefore')
      throw Object.assign(new Error('injected timeout'), { name: 'TimeoutError' });
    if (this.enforceS3Conditions && info.service === 's3' && header(req, 'if-none-match') === '*') {
      const exists = await this.exists(req);
      if (exists) {
        const xml =
          '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>';
        return {
          response: new HttpResponse({
            statusCode: 412,
            headers: { 'content-type': 'application/xml' },
            body: Readable.from([Buffer.from(xml)]),
          }),
        };
      }
    }
    const out = await this.inner.handle(req, options);
    if (fault === 'timeoutAfter' || fault === 'lost') {
      await drain(out.response.body);
      if (out.response.statusCode < 300) this.landedAndLost.push(info.operation);
      if (fault === 'timeoutAfter')
        throw Object.assign(new Error('injected timeout'), { name: 'TimeoutError' });
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    }
    return out;
  }

  private async exists(req: HttpRequest): Promise<boolean> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (/^(host|authorization|x-amz-date|x-amz-content-sha256|x-amz-security-token)$/i.test(k))
        headers[k] = v;
    }
    const head = new HttpRequest({ ...req, method: 'HEAD', query: {}, headers, body: undefined });
    const { response } = await this.inner.handle(head);
    await drain(response.body);
    return response.statusCode === 200;
  }

  updateHttpClientConfig(key: never, value: never): void {
    this.inner.updateHttpClientConfig(key, value);
  }

  httpHandlerConfigs() {
    return this.inner.httpHandlerConfigs();
  }

  destroy(): void {
    this.inner.destroy();
  }

  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }
}

// ---------------------------------------------------------------- setup

const SEEDS = (process.env.FAULT_SEEDS ?? '1,2,3').split(',').map(Number);
const RATES: Rates = { throttle: 0.08, server: 0.06, timeoutBefore: 0.04, timeoutAfter: 0.04, lost: 0.08 };
const FAST_RETRY = { maxAttempts: 40, baseDelayMs: 1, maxDelayMs: 15 };

let emu: Emulators;
beforeAll(async () => {
  emu = await startEmulators({ kinesisShards: 2 });
});
afterAll(async () => {
  await emu?.stop();
});

/** The SDK takes any object with the handler methods; typed as the handler it wraps. */
const asHandler = (h: FaultInjectingHandler): NodeHttpHandler => h as unknown as NodeHttpHandler;

function faultyS3(h: FaultInjectingHandler, prefix: string, extra = {}): S3ObjectStore {
  return new S3ObjectStore({
    bucket: emu.s3.bucket,
    prefix,
    client: s3ClientFor(emu.s3.endpoint, { requestHandler: asHandler(h) }),
    multipartThresholdBytes: 64 * 1024,
    partSizeBytes: 32 * 1024,
    retry: FAST_RETRY,
    ...extra,
  });
}

function cleanS3(prefix: string): S3ObjectStore {
  return new S3ObjectStore({ bucket: emu.s3.bucket, prefix, client: emu.clients.s3 });
}

function faultyCatalog(h: FaultInjectingHandler): DynamoDbCatalog {
  return new DynamoDbCatalog({
    tableName: emu.dynamodb.table,
    client: dynamoDbClientFor(emu.dynamodb.endpoint, { requestHandler: asHandler(h) }),
    retry: FAST_RETRY,
  });
}

function faultyLog(h: FaultInjectingHandler, extra = {}): KinesisLog {
  return new KinesisLog({
    streamName: emu.kinesis.stream,
    client: kinesisClientFor(emu.kinesis.endpoint, { requestHandler: asHandler(h) }),
    idleIntervalMs: 10,
    retry: FAST_RETRY,
    ...extra,
  });
}

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const once = (op: RegExp | string): Decide => {
  let done = false;
  return (info) => {
    if (done || !(typeof op === 'string' ? info.operation.includes(op) : op.test(info.operation)))
      return undefined;
    done = true;
    return 'lost';
  };
};

// ---------------------------------------------------------------- S3

describe('S3ObjectStore under faults', () => {
  it('a lost response to a create-only put is recognized as our own write', async () => {
    const prefix = uniqueName('s3lost');
    const h = new FaultInjectingHandler(once(/^PUT /), true);
    const store = faultyS3(h, prefix);
    await store.put('obj', enc('mine'), { ifNoneMatch: true });
    expect(h.landedAndLost).toHaveLength(1);
    expect(await cleanS3(prefix).get('obj')).toEqual(enc('mine'));
    // A real conflict is still one.
    await expect(store.put('obj', enc('other'), { ifNoneMatch: true })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    expect(await cleanS3(prefix).get('obj')).toEqual(enc('mine'));
  });

  it('a lost response to CompleteMultipartUpload is recognized as our own upload', async () => {
    const prefix = uniqueName('s3mp');
    const h = new FaultInjectingHandler(once(/^POST .*uploadId/), true);
    const store = faultyS3(h, prefix);
    const body = bytes(150 * 1024, 3);
    await store.put('big', body, { ifNoneMatch: true });
    expect(h.landedAndLost).toHaveLength(1);
    expect(await cleanS3(prefix).get('big')).toEqual(body);
    await expect(store.put('big', bytes(150 * 1024, 4), { ifNoneMatch: true })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    // Plain puts too (s3rver answers the repeated Complete with a 500; S3 says NoSuchUpload).
    const h2 = new FaultInjectingHandler(once(/^POST .*uploadId/));
    await faultyS3(h2, prefix).put('big2', body);
    expect(h2.landedAndLost).toHaveLength(1);
    expect(await cleanS3(prefix).get('big2')).toEqual(body);
  });

  for (const seed of SEEDS) {
    it(`converges: every object written once with the right bytes (seed ${seed})`, async () => {
      const prefix = uniqueName(`s3seed${seed}`);
      const h = new FaultInjectingHandler(seeded(seed, RATES), true);
      const store = faultyS3(h, prefix);
      const expected = new Map<string, Uint8Array>();
      const small = Array.from(
        { length: 24 },
        (_, i) => [`data/${String(i).padStart(2, '0')}`, bytes(100 + i * 37, seed * 100 + i)] as const,
      );
      await Promise.all(small.map(([k, b]) => store.put(k, b)));
      for (const [k, b] of small) expected.set(k, b);
      for (let i = 0; i < 2; i++) {
        const b = bytes(100 * 1024 + i, seed * 1000 + i);
        await store.put(`large/${i}`, b);
        expected.set(`large/${i}`, b);
      }
      for (let i = 0; i < 4; i++) {
        const b = enc(`created ${seed}/${i}`);
        await store.put(`meta/v${i}.json`, b, { ifNoneMatch: true });
        expected.set(`meta/v${i}.json`, b);
      }
      await expect(store.put('meta/v0.json', enc('again'), { ifNoneMatch: true })).rejects.toBeInstanceOf(
        PreconditionFailedError,
      );
      // Reads, ranges, listing and deletes under faults.
      expect(await store.get('data/05')).toEqual(expected.get('data/05'));
      expect(await store.getRange('large/1', 1000, 2000)).toEqual(expected.get('large/1')!.slice(1000, 3000));
      expect((await listAll(store, 'data/')).map((o) => o.key)).toEqual(small.map(([k]) => k));
      const doomed = small.filter((_, i) => i % 3 === 0).map(([k]) => k);
      await store.deleteMany(doomed);
      for (const k of doomed) expected.delete(k);
      await store.delete('data/01');
      expected.delete('data/01');

      // Check without faults.
      const clean = cleanS3(prefix);
      const listed = await listAll(clean, '');
      expect(listed.map((o) => o.key).sort()).toEqual([...expected.keys()].sort());
      for (const [k, b] of expected) expect(await clean.get(k), k).toEqual(b);
      expect(h.total).toBeGreaterThan(5);
      store.close();
    });
  }
});

// ---------------------------------------------------------------- DynamoDB

describe('DynamoDbCatalog under faults', () => {
  it('lost responses: create, epoch, pointer update and lease calls are each applied once', async () => {
    const t = uniqueTable('lost');
    const def = tableDef(t);
    let h = new FaultInjectingHandler(once('PutItem'));
    await faultyCatalog(h).createTable(def);
    expect(h.landedAndLost).toEqual(['DynamoDB_20120810.PutItem']);

    h = new FaultInjectingHandler(once('UpdateItem'));
    const catalog = faultyCatalog(h);
    const epoch = await catalog.acquireEpoch(t);
    expect(h.landedAndLost).toEqual(['DynamoDB_20120810.UpdateItem']);
    expect(epoch).toBe(1);

    // updatePointer reports its own landed write as a conflict; the keeper recognizes it.
    const h2 = new FaultInjectingHandler(once('UpdateItem'));
    const keeper = new PointerKeeper(faultyCatalog(h2), t, epoch, undefined);
    const p = await keeper.update((u) => ({ ...u, lsn: asLsn(1n), committedLsn: asLsn(1n) }));
    expect(h2.landedAndLost).toHaveLength(1);
    expect(p.version).toBe(1);
    expect((await catalog.getPointer(t))?.version).toBe(1);

    const h3 = new FaultInjectingHandler(once('UpdateItem'));
    const c3 = faultyCatalog(h3);
    await c3.putLease({ leaseId: `${t}.a`, table: t, snapshotKey: 's', expiresAt: Date.now() + 1000 });
    expect(await c3.deleteLease(`${t}.a`)).toBe(true);
    expect(h3.landedAndLost).toHaveLength(1);
    expect(await c3.deleteLease(`${t}.a`)).toBe(false);
  });

  for (const seed of SEEDS) {
    it(`converges: CAS sequences end at the right pointer, epochs and leases exact (seed ${seed})`, async () => {
      const h = new FaultInjectingHandler(seeded(seed, RATES));
      const catalog = faultyCatalog(h);
      const t = uniqueTable(`seed${seed}`);
      const def = tableDef(t);
      await catalog.createTable(def);
      h.enabled = false;
      expect(await catalog.getTable(t)).toEqual(def);
      h.enabled = true;

      // Three writers take epochs concurrently: every call increments exactly once.
      const epochs = await Promise.all([1, 2, 3].map(() => catalog.acquireEpoch(t)));
      expect([...epochs].sort()).toEqual([1, 2, 3]);
      const epoch = await catalog.acquireEpoch(t);
      expect(epoch).toBe(4);

      // A writer's pointer updates: 25 compare-and-swaps through the PointerKeeper.
      const keeper = new PointerKeeper(catalog, t, epoch, undefined);
      const updates = 25;
      let transientRetries = 0;
      for (let i = 1; i <= updates; i++) {
        for (;;) {
          try {
            await keeper.update((u) => ({
              ...u,
              lsn: asLsn(BigInt(i)),
              committedLsn: asLsn(BigInt(i - (i % 5))),
              snapshotKey: `${t}/snap/${i}.json`,
              checkpoints: { 'shardId-000000000001': String(i * 7), 'shardId-000000000000': String(i) },
            }));
            break;
          } catch (e) {
            if (e instanceof FencedError) throw e;
            transientRetries++;
          }
        }
      }
      h.enabled = false;
      const final = (await catalog.getPointer(t)) as TablePointer;
      expect(final.version).toBe(updates);
      expect(final.lsn).toBe(asLsn(BigInt(updates)));
      expect(final.epoch).toBe(epoch);
      expect(final.snapshotKey).toBe(`${t}/snap/${updates}.json`);
      expect(keeper.pointer).toEqual(final);
      expect(transientRetries).toBeLessThan(updates);
      h.enabled = true;

      // Leases: every put lands, every delete reports true exactly once.
      const ids = Array.from({ length: 12 }, (_, i) => `${t}.lease${i}`);
      await Promise.all(
        ids.map((leaseId) =>
          catalog.putLease({ leaseId, table: t, snapshotKey: 's', expiresAt: Date.now() + 60_000 }),
        ),
      );
      h.enabled = false;
      expect((await catalog.listLeases(t)).length).toBe(ids.length);
      h.enabled = true;
      const first = await Promise.all(ids.map((id) => catalog.deleteLease(id)));
      const second = await Promise.all(ids.map((id) => catalog.deleteLease(id)));
      expect(first.every(Boolean)).toBe(true);
      expect(second.some(Boolean)).toBe(false);
      h.enabled = false;
      expect(await catalog.listLeases(t)).toEqual([]);
      h.enabled = true;

      await catalog.dropTable(t);
      h.enabled = false;
      expect(await catalog.getTable(t)).toBeUndefined();
      expect(await catalog.getPointer(t)).toBeUndefined();
      expect(h.total).toBeGreaterThan(5);
    });
  }
});

// ---------------------------------------------------------------- Kinesis

async function rawCount(table: string): Promise<number> {
  const k = emu.clients.kinesis;
  const { Shards } = await k.send(new ListShardsCommand({ StreamName: emu.kinesis.stream }));
  let n = 0;
  for (const s of shardChain(Shards ?? [], hashKeyOf(table))) {
    let it = (
      await k.send(
        new GetShardIteratorCommand({
          StreamName: emu.kinesis.stream,
          ShardId: s.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      )
    ).ShardIterator;
    for (;;) {
      const page = await k.send(new GetRecordsCommand({ ShardIterator: it }));
      if (!page.Records?.length) break;
      n += page.Records.filter((r) => r.PartitionKey === table).length;
      it = page.NextShardIterator;
    }
  }
  return n;
}

describe('KinesisLog under faults', () => {
  it('a lost PutRecord response leaves a duplicate record; it is delivered once, at the LSN returned', async () => {
    const t = uniqueName('klost');
    const h = new FaultInjectingHandler(once('PutRecord'));
    const log = faultyLog(h);
    const lsn = await log.append(t, enc('{"ops":[{"op":"insert","row":{"id":1}}]}'));
    const lsn2 = await log.append(t, enc('{"ops":[{"op":"insert","row":{"id":2}}]}'));
    expect(h.landedAndLost).toEqual(['Kinesis_20131202.PutRecord']);
    expect(await rawCount(t)).toBe(3);
    const seen: LogEntry[] = [];
    const sub = await log.subscribe(t, asLsn(0n), (e) => seen.push(e));
    await waitUntil('entries', () => seen.length >= 2);
    await new Promise((r) => setTimeout(r, 150));
    sub.stop();
    expect(seen.map((e) => e.lsn)).toEqual([lsn, lsn2]);
    await log.close();
  });

  for (const seed of SEEDS) {
    it(`converges: every transaction delivered exactly once, in order (seed ${seed})`, async () => {
      const t = uniqueName(`kseed${seed}`);
      const producerFaults = new FaultInjectingHandler(seeded(seed, RATES));
      const consumerFaults = new FaultInjectingHandler(seeded(seed + 1000, RATES));
      const producer = faultyLog(producerFaults, { maxRecordBytes: 2048 });
      const consumer = faultyLog(consumerFaults);
      const seen: LogEntry[] = [];
      const sub = await consumer.subscribe(t, asLsn(0n), (e) => seen.push(e));
      const appended = new Map<Lsn, string>();
      const payload = (i: number): string =>
        i % 7 === 3
          ? `{"ops":[${Array.from({ length: 40 }, (_, k) => `{"op":"insert","row":{"id":${i * 1000 + k},"big":123456789012345678901234567890,"pad":"${'p'.repeat(40)}"}}`).join(',')}]}`
          : `{"ops":[{"op":"upsert","row":{"id":${i},"n":${9007199254740993n + BigInt(i)}}}]}`;
      const n = 36;
      for (let i = 0; i < n; i += 4) {
        // Four at a time: concurrent appends of one table.
        const batch = [i, i + 1, i + 2, i + 3].filter((k) => k < n);
        const lsns = await Promise.all(batch.map((k) => producer.append(t, enc(payload(k)))));
        for (const [j, l] of lsns.entries()) appended.set(l, payload(batch[j]));
      }
      expect(appended.size).toBe(n);
      await waitUntil(`${n} deliveries`, () => seen.length >= n, 30_000);
      await new Promise((r) => setTimeout(r, 200));
      sub.stop();
      const order = [...appended.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      expect(seen.map((e) => e.lsn)).toEqual(order);
      for (const e of seen) expect(dec(e.payload)).toBe(appended.get(e.lsn));

      // Resuming in the middle (a restart after applying half) gives exactly the rest.
      const resumed: LogEntry[] = [];
      const consumer2 = faultyLog(new FaultInjectingHandler(seeded(seed + 2000, RATES)));
      const sub2 = await consumer2.subscribe(t, order[n / 2 - 1], (e) => resumed.push(e));
      await waitUntil('resumed deliveries', () => resumed.length >= n / 2, 30_000);
      await new Promise((r) => setTimeout(r, 200));
      sub2.stop();
      expect(resumed.map((e) => e.lsn)).toEqual(order.slice(n / 2));

      // Exact accounting of the stream: every record of every transaction, plus one copy per
      // PutRecord that landed with its response lost (those the consumer skipped).
      const records = [...appended.values()].reduce(
        (sum, p) => sum + encodeTransaction(t, randomUUID(), enc(p), 2048 - t.length, true).length,
        0,
      );
      const duplicates = producerFaults.landedAndLost.filter((op) => op.endsWith('.PutRecord')).length;
      expect(await rawCount(t)).toBe(records + duplicates);
      expect(producerFaults.total).toBeGreaterThan(3);
      expect(consumerFaults.total).toBeGreaterThan(3);
      await Promise.all([producer.close(), consumer.close(), consumer2.close()]);
    });
  }
});
