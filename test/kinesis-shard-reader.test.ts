/**
 * One reader per shard (kinesis-shard-reader.ts), on kinesalite: the tables of one log share a
 * GetRecords loop per shard. Proven here: every table gets its records exactly once and in
 * order while tables subscribe early, late (catching up on their own iterator under traffic,
 * then handing over) and from a resume point; the calls at rest are one loop's, not one per
 * table; stopped subscriptions stop the loop; a shard split sends a shared reader's tables on
 * into their own child shards. With enhanced fan-out the readers subscribe instead of polling.
 *
 * kinesalite has no enhanced fan-out (SubscribeToShard, HTTP/2 event streams): the subscribing
 * client here serves each subscription from kinesalite's records (GetRecords pages as events,
 * ending after a short lifetime as Kinesis ends them after five minutes). Not covered: the
 * HTTP/2 transport and the SDK's event-stream decoding, and consumer registration (the stack
 * registers one per writer group).
 */

import {
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  ListShardsCommand,
  SplitShardCommand,
  SubscribeToShardCommand,
} from '@aws-sdk/client-kinesis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogEntry, LogSubscription } from '../lib/log/durable-log.ts';
import { KinesisLog } from '../lib/log/kinesis-log.ts';
import { hashKeyOf } from '../lib/log/kinesis-shards.ts';
import { type Lsn, ZERO_LSN } from '../lib/lsn.ts';
import {
  createStream,
  type Emulators,
  kinesisClientFor,
  startEmulators,
  uniqueName,
} from '../localstack/emulators.ts';
import { waitUntil } from './contract/log-contract.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const IDLE_MS = 20;

/** A client that counts the GetRecords calls made through it. */
function countingClient(endpoint: string): { client: KinesisClient; getRecords: () => number } {
  const client = kinesisClientFor(endpoint);
  let calls = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'GetRecordsCommand') calls++;
      return next(args);
    },
    { step: 'initialize', name: 'countGetRecords' },
  );
  return { client, getRecords: () => calls };
}

/** SubscribeToShard as Kinesis serves it, made of kinesalite's records (see the top of the file). */
function fanOutClient(endpoint: string, stream: string, lifetimeMs: number) {
  const reader = kinesisClientFor(endpoint);
  let subscriptions = 0;
  const send = async (command: unknown, options?: { abortSignal?: AbortSignal }) => {
    if (!(command instanceof SubscribeToShardCommand)) throw new Error('this client only subscribes');
    subscriptions++;
    const { ShardId, StartingPosition, ConsumerARN } = command.input;
    if (ConsumerARN !== CONSUMER) throw new Error(`unknown consumer ${ConsumerARN}`);
    const first = (
      await reader.send(
        new GetShardIteratorCommand({
          StreamName: stream,
          ShardId,
          ShardIteratorType: StartingPosition!.Type,
          StartingSequenceNumber: StartingPosition!.SequenceNumber,
        }),
      )
    ).ShardIterator;
    async function* events() {
      let it = first;
      let last = StartingPosition!.SequenceNumber;
      const until = Date.now() + lifetimeMs;
      while (it && Date.now() < until && !options?.abortSignal?.aborted) {
        const page = await reader.send(new GetRecordsCommand({ ShardIterator: it }));
        const records = page.Records ?? [];
        if (records.length > 0) last = records.at(-1)!.SequenceNumber;
        const closed = !page.NextShardIterator;
        yield {
          SubscribeToShardEvent: {
            Records: records,
            ContinuationSequenceNumber: closed ? undefined : last,
            MillisBehindLatest: page.MillisBehindLatest,
            ...(closed ? { ChildShards: [] } : {}),
          },
        };
        if (closed) return;
        it = page.NextShardIterator;
        await new Promise((r) => setTimeout(r, IDLE_MS));
      }
    }
    return { EventStream: events() };
  };
  const client = { send, destroy: () => reader.destroy() } as unknown as KinesisClient;
  return { client, subscriptions: () => subscriptions };
}

/** The middle of the hash-key range: a split there sends each half's tables to one child. */
const MID = 1n << 127n;

/** A table name whose hash key is in the lower (or upper) half of the range. */
function tableInHalf(prefix: string, low: boolean): string {
  for (;;) {
    const t = uniqueName(prefix);
    if (hashKeyOf(t) < MID === low) return t;
  }
}

const CONSUMER = 'arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/moonlink-writer-0:1';

describe('one Kinesis reader per shard, shared by its tables', () => {
  let emu: Emulators;
  const cleanup: (() => Promise<void> | void)[] = [];
  beforeAll(async () => {
    emu = await startEmulators({ kinesisShards: 1 });
  });
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
    await emu?.stop();
  });

  async function setup(shards: number, fanOutLifetimeMs?: number) {
    const stream = uniqueName('shared');
    await createStream(emu.clients.kinesis, stream, shards);
    const counting = countingClient(emu.kinesis.endpoint);
    const fanOut =
      fanOutLifetimeMs === undefined
        ? undefined
        : fanOutClient(emu.kinesis.endpoint, stream, fanOutLifetimeMs);
    const log = new KinesisLog({
      streamName: stream,
      client: counting.client,
      idleIntervalMs: IDLE_MS,
      ...(fanOut ? { consumerArn: CONSUMER, subscribeClient: fanOut.client } : {}),
    });
    cleanup.push(
      () => log.close(),
      () => counting.client.destroy(),
      () => fanOut?.client.destroy(),
    );
    const seen = new Map<string, LogEntry[]>();
    const subs: LogSubscription[] = [];
    const subscribe = async (t: string, after = ZERO_LSN) => {
      const got: LogEntry[] = [];
      seen.set(t, got);
      subs.push(await log.subscribe(t, after, (e) => got.push(e)));
    };
    const appended = new Map<string, Lsn[]>();
    const append = async (t: string, i: number) => {
      const lsn = await log.append(t, enc(`{"ops":[{"op":"insert","row":{"id":${i}}}]}`));
      const list = appended.get(t) ?? [];
      appended.set(t, list);
      list.push(lsn);
      return lsn;
    };
    return {
      stream,
      log,
      seen,
      subs,
      subscribe,
      appended,
      append,
      getRecords: counting.getRecords,
      subscriptions: () => fanOut?.subscriptions() ?? 0,
    };
  }

  /** Splits the stream's one shard at the middle of the hash range; resolves once it is active. */
  async function splitInHalves(stream: string): Promise<void> {
    const { Shards } = await emu.clients.kinesis.send(new ListShardsCommand({ StreamName: stream }));
    await emu.clients.kinesis.send(
      new SplitShardCommand({
        StreamName: stream,
        ShardToSplit: Shards![0].ShardId,
        NewStartingHashKey: String(MID),
      }),
    );
    for (;;) {
      const d = await emu.clients.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
      if (d.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') break;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('delivers every table exactly once and in order, with tables joining early, late and from a resume point; at rest one loop polls', async () => {
    const s = await setup(1);
    const tables = Array.from({ length: 10 }, (_, i) => uniqueName(`t${i}`));
    let n = 0;
    for (let round = 0; round < 3; round++) for (const t of tables) await s.append(t, n++);
    await Promise.all(tables.slice(0, 6).map((t) => s.subscribe(t)));
    await waitUntil('the early tables', () => tables.slice(0, 6).every((t) => s.seen.get(t)!.length === 3));
    await waitUntil('one shared reader', () => s.log.readingStats().catchingUp === 0);
    expect(s.log.readingStats()).toEqual({ readers: 1, catchingUp: 0, shared: 6 });

    // Late tables subscribe while records keep arriving for every table: each reads on its own
    // iterator from the shard's start (or its resume point) and hands over to the reader.
    for (const t of tables) await s.append(t, n++);
    const resumeAt = s.appended.get(tables[7])![1];
    let appending = true;
    const traffic = (async () => {
      while (appending) await s.append(tables[n % tables.length], n++);
    })();
    await s.subscribe(tables[6]);
    await s.subscribe(tables[7], resumeAt);
    await new Promise((r) => setTimeout(r, 50));
    await Promise.all([s.subscribe(tables[8]), s.subscribe(tables[9])]);
    await waitUntil('every table caught up', () => s.log.readingStats().catchingUp === 0, 20_000);
    await new Promise((r) => setTimeout(r, 100));
    appending = false;
    await traffic;

    const expected = (t: string) => {
      const all = s.appended.get(t)!;
      return t === tables[7] ? all.filter((l) => l > resumeAt) : all;
    };
    await waitUntil('every record delivered', () =>
      tables.every((t) => s.seen.get(t)!.length >= expected(t).length),
    );
    await new Promise((r) => setTimeout(r, 200));
    for (const t of tables) expect(s.seen.get(t)!.map((e) => e.lsn)).toEqual(expected(t));
    expect(n).toBeGreaterThan(50);
    expect(s.log.readingStats()).toEqual({ readers: 1, catchingUp: 0, shared: 10 });

    // At rest: one loop's calls (one per idle interval), not one per table.
    const before = s.getRecords();
    await new Promise((r) => setTimeout(r, 1000));
    const calls = s.getRecords() - before;
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThanOrEqual(1000 / IDLE_MS + 10); // ten loops would make ~500

    // Stopping every subscription stops the loop.
    for (const sub of s.subs) sub.stop();
    expect(s.log.readingStats()).toEqual({ readers: 0, catchingUp: 0, shared: 0 });
    await new Promise((r) => setTimeout(r, 100));
    const stopped = s.getRecords();
    await new Promise((r) => setTimeout(r, 300));
    expect(s.getRecords()).toBe(stopped);

    // A table subscribed again starts a reader again, from its resume point.
    const last = s.appended.get(tables[0])!.at(-1)!;
    await s.append(tables[0], n++);
    await s.subscribe(tables[0], last);
    await waitUntil('resubscribed', () => s.seen.get(tables[0])!.length === 1);
    expect(s.seen.get(tables[0])!.map((e) => e.lsn)).toEqual(s.appended.get(tables[0])!.slice(-1));
  });

  it("sends a shared reader's tables on into their own child shards after a split", async () => {
    const s = await setup(1);
    const named = (low: boolean) => tableInHalf(low ? 'lo' : 'hi', low);
    const tables = [named(true), named(false), named(true), named(false)];
    let n = 0;
    for (const t of tables) await s.append(t, n++);
    for (const t of tables) await s.subscribe(t);
    await waitUntil('shared before the split', () => s.log.readingStats().shared === 4);
    expect(s.log.readingStats().readers).toBe(1);

    await splitInHalves(s.stream);
    for (let round = 0; round < 3; round++) for (const t of tables) await s.append(t, n++);
    await waitUntil(
      'every record after the split',
      () => tables.every((t) => s.seen.get(t)!.length === s.appended.get(t)!.length),
      20_000,
    );
    await new Promise((r) => setTimeout(r, 200));
    for (const t of tables) expect(s.seen.get(t)!.map((e) => e.lsn)).toEqual(s.appended.get(t));
    // One reader per child shard, each shared by the two tables it holds.
    await waitUntil('a reader per child', () => s.log.readingStats().catchingUp === 0);
    expect(s.log.readingStats()).toEqual({ readers: 2, catchingUp: 0, shared: 4 });
  });

  it('with enhanced fan-out, subscribes instead of polling: again each time a subscription ends, and on into child shards', async () => {
    const s = await setup(1, 300);
    const named = (low: boolean) => tableInHalf(low ? 'flo' : 'fhi', low);
    const tables = [named(true), named(false), named(true), named(false), named(true), named(false)];
    let n = 0;
    for (const t of tables) await s.append(t, n++);
    await Promise.all(tables.map((t) => s.subscribe(t)));
    await waitUntil('shared', () => s.log.readingStats().shared === tables.length);
    expect(s.log.readingStats().readers).toBe(1);

    // Records keep coming while subscriptions end and are made again; nothing polls at rest.
    const polled = s.getRecords();
    const subscribed = s.subscriptions();
    const until = Date.now() + 1200;
    while (Date.now() < until) {
      await s.append(tables[n % tables.length], n++);
      await new Promise((r) => setTimeout(r, 30));
    }
    await waitUntil('delivered', () =>
      tables.every((t) => s.seen.get(t)!.length === s.appended.get(t)!.length),
    );
    expect(s.getRecords()).toBe(polled);
    expect(s.subscriptions() - subscribed).toBeGreaterThanOrEqual(3);
    for (const t of tables) expect(s.seen.get(t)!.map((e) => e.lsn)).toEqual(s.appended.get(t));

    // A split: the subscription reads the parent to its end, the tables go on into their children.
    await splitInHalves(s.stream);
    for (let round = 0; round < 3; round++) for (const t of tables) await s.append(t, n++);
    await waitUntil(
      'delivered after the split',
      () => tables.every((t) => s.seen.get(t)!.length === s.appended.get(t)!.length),
      20_000,
    );
    await new Promise((r) => setTimeout(r, 200));
    for (const t of tables) expect(s.seen.get(t)!.map((e) => e.lsn)).toEqual(s.appended.get(t));
    await waitUntil('a reader per child', () => s.log.readingStats().catchingUp === 0);
    expect(s.log.readingStats()).toEqual({ readers: 2, catchingUp: 0, shared: tables.length });
  });
});
