import { createRequire } from 'node:module';
/**
 * KinesisLog beyond the shared log contract: the record format (splitting and reassembly,
 * byte-exact payloads), malformed records delivered raw for dead-lettering, duplicate records,
 * resuming after an LSN (the dedup window read back), and resharding (kinesalite can split
 * shards, so a subscription is shown to follow a closed shard into its child).
 */
import {
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  PutRecordCommand,
  type Shard,
  SplitShardCommand,
} from '@aws-sdk/client-kinesis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LogEntry, LogSubscription } from '../lib/log/durable-log.ts';
import { TableRecordAssembler } from '../lib/log/kinesis-assembler.ts';
import { KinesisLog } from '../lib/log/kinesis-log.ts';
import { encodeTransaction, RecordTooLargeError, unwrapRecord } from '../lib/log/kinesis-records.ts';
import { hashKeyOf, shardChain } from '../lib/log/kinesis-shards.ts';
import { asLsn, type Lsn, ZERO_LSN } from '../lib/lsn.ts';
import { decodeTransactionText } from '../lib/txn/transaction.ts';
import { createStream, type Emulators, startEmulators, uniqueName } from '../localstack/emulators.ts';
import { tableDef } from './contract/catalog-contract.ts';
import { waitUntil } from './contract/log-contract.ts';

// aws-kinesis-agg (AWS Labs' KPL aggregation for Node) types no RecordAggregator: required plainly.
const { RecordAggregator } = createRequire(import.meta.url)('aws-kinesis-agg') as {
  RecordAggregator: new () => {
    addUserRecord(r: { partitionKey: string; data: Buffer }): void;
    build(): { partitionKey: string; data: Buffer };
  };
};

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function bigTxn(ops: number, width = 80): string {
  const rows = Array.from(
    { length: ops },
    (_, i) => `{"op":"upsert","row":{"id":${9007199254740993n + BigInt(i)},"v":"${'x'.repeat(width)}${i}"}}`,
  );
  return `{"ops":[${rows.join(',')}]}`;
}

describe('record format (no stream)', () => {
  it('wraps a transaction in one record and unwraps it byte for byte', () => {
    const payload = '{"ops":[{"op":"insert","row":{"id":123456789012345678901234567890,"d":1.10}}]}';
    const [rec, ...rest] = encodeTransaction('orders', 'tx-1', enc(payload), 1024);
    expect(rest).toEqual([]);
    expect(dec(rec)).toBe(
      '{"table":"orders","txn":"tx-1","ops":[{"op":"insert","row":{"id":123456789012345678901234567890,"d":1.10}}]}',
    );
    const u = unwrapRecord(rec);
    expect(u).toMatchObject({ kind: 'txn', table: 'orders', txn: 'tx-1' });
    expect(dec((u as { payload: Uint8Array }).payload)).toBe(payload);
  });

  it('unwraps records written by others: any member order, whitespace, no txn', () => {
    const u = unwrapRecord(enc(' { "ops" : [ {"op":"delete","row":{"id":1}} ] , "table" : "t" } '));
    expect(u).toMatchObject({ kind: 'txn', table: 't', txn: undefined });
    expect(dec((u as { payload: Uint8Array }).payload)).toBe('{"ops" : [ {"op":"delete","row":{"id":1}} ]}');
  });

  it('splits a large transaction into parts that reassemble exactly', () => {
    const payload = bigTxn(60);
    const records = encodeTransaction('t', 'tx-2', enc(payload), 1000);
    expect(records.length).toBeGreaterThan(5);
    for (const r of records) expect(r.length).toBeLessThanOrEqual(1000);
    const a = new TableRecordAssembler('t', 60_000);
    const out: LogEntry[] = [];
    records.forEach((r, i) => {
      const got = a.accept({ seq: asLsn(BigInt(i + 1)), data: r, arrival: 1000 + i });
      if (got) out.push(got.entry);
    });
    expect(out).toHaveLength(1);
    expect(out[0].lsn).toBe(BigInt(records.length));
    expect(dec(out[0].payload)).toBe(payload);
  });

  it('refuses what cannot be a record', () => {
    expect(() => encodeTransaction('t', 'x', enc('{not json'), 1000)).toThrow(TypeError);
    expect(() => encodeTransaction('t', 'x', enc('{"table":"u","ops":[]}'), 1000)).toThrow(/"table"/);
    const huge = `{"ops":[{"op":"insert","row":{"v":"${'y'.repeat(2000)}"}}]}`;
    expect(() => encodeTransaction('t', 'x', enc(huge), 1000)).toThrow(RecordTooLargeError);
    expect(() => encodeTransaction('t', 'x', enc(`{"ops":[],"other":"${'z'.repeat(2000)}"}`), 1000)).toThrow(
      RecordTooLargeError,
    );
  });

  it('carries binary payloads (Arrow streams, idempotent writes) as base64 in "bin", split into parts when large', () => {
    const asm = new TableRecordAssembler('t', 60_000);
    const payload = new Uint8Array(5000).map((_, i) => (i * 31 + 7) & 0xff);
    payload[0] = 0xff; // an Arrow stream's first byte: not JSON
    const one = encodeTransaction('t', 'x1', payload.subarray(0, 300), 100_000);
    expect(one).toHaveLength(1);
    expect(JSON.parse(new TextDecoder().decode(one[0]))).toEqual({
      table: 't',
      txn: 'x1',
      bin: Buffer.from(payload.subarray(0, 300)).toString('base64'),
    });
    expect(asm.accept({ seq: asLsn(1n), data: one[0], arrival: 1 })?.entry.payload).toEqual(
      payload.subarray(0, 300),
    );
    const parts = encodeTransaction('t', 'x2', payload, 1000);
    expect(parts.length).toBeGreaterThan(5);
    for (const p of parts) expect(p.length).toBeLessThanOrEqual(1000);
    // Out of order and with a duplicate part: delivered once, when the last part arrives.
    const order = [...parts.keys()].reverse();
    let delivered: Uint8Array | undefined;
    for (const [k, i] of order.entries()) {
      const got = asm.accept({ seq: asLsn(BigInt(10 + k)), data: parts[i], arrival: 2 });
      if (k === 0) expect(asm.accept({ seq: asLsn(99n), data: parts[i], arrival: 2 })).toBeUndefined();
      if (got) delivered = got.entry.payload;
    }
    expect(delivered).toEqual(payload);
    expect(unwrapRecord(enc('{"table":"t","bin":"not base64!"}'))).toMatchObject({ kind: 'malformed' });
    expect(unwrapRecord(enc('{"table":"t","bin":"AAAA","ops":[]}'))).toMatchObject({ kind: 'malformed' });
  });

  it('classifies malformed records, attributing them by table member or partition key', () => {
    expect(unwrapRecord(enc('garbage'), 'pk')).toMatchObject({ kind: 'malformed', table: 'pk' });
    expect(unwrapRecord(enc('{"ops":[]}'), 'pk')).toMatchObject({ kind: 'malformed', table: 'pk' });
    expect(unwrapRecord(enc('{"table":5,"ops":[]}'), 'pk')).toMatchObject({ kind: 'malformed', table: 'pk' });
    expect(unwrapRecord(enc('{"table":"t","txn":"a","part":2,"parts":2,"ops":[]}'))).toMatchObject({
      kind: 'malformed',
      table: 't',
    });
    expect(unwrapRecord(enc('{"table":"t","txn":"a","part":0,"parts":2,"ops":{}}'))).toMatchObject({
      kind: 'malformed',
    });
    expect(unwrapRecord(enc('{"table":"t","part":0,"parts":2,"ops":[]}'))).toMatchObject({
      kind: 'malformed',
    });
    expect(unwrapRecord(enc('{"table":"t","ops":[1,2'))).toMatchObject({
      kind: 'malformed',
      table: undefined,
    });
    expect(unwrapRecord(enc('{"table":"t","ops":[]} trailing'))).toMatchObject({ kind: 'malformed' });
  });

  it('orders a hash key’s shards parent before child', () => {
    const shard = (id: string, from: bigint, to: bigint, seq: string, parent?: string): Shard => ({
      ShardId: id,
      ParentShardId: parent,
      HashKeyRange: { StartingHashKey: String(from), EndingHashKey: String(to) },
      SequenceNumberRange: { StartingSequenceNumber: seq },
    });
    const max = 2n ** 128n - 1n;
    const shards = [
      shard('c2', max / 2n + 1n, max, '300', 'p'),
      shard('p', 0n, max, '100'),
      shard('c1', 0n, max / 2n, '200', 'p'),
    ];
    expect(shardChain(shards, 5n).map((s) => s.ShardId)).toEqual(['p', 'c1']);
    expect(shardChain(shards, max).map((s) => s.ShardId)).toEqual(['p', 'c2']);
    // The hash key Kinesis uses: MD5 of the partition key, as an unsigned 128-bit integer.
    expect(hashKeyOf('')).toBe(BigInt('0xd41d8cd98f00b204e9800998ecf8427e'));
  });
});

describe('KinesisLog on kinesalite', () => {
  let emu: Emulators;
  const logs: KinesisLog[] = [];
  const subs: LogSubscription[] = [];
  beforeAll(async () => {
    emu = await startEmulators({ kinesisShards: 2 });
  });
  afterAll(async () => {
    await emu?.stop();
  });
  afterEach(async () => {
    for (const s of subs.splice(0)) s.stop();
    for (const l of logs.splice(0)) await l.close();
  });

  function newLog(
    stream = emu.kinesis.stream,
    extra: Partial<ConstructorParameters<typeof KinesisLog>[0]> = {},
  ) {
    const log = new KinesisLog({
      streamName: stream,
      client: emu.clients.kinesis,
      idleIntervalMs: 20,
      ...extra,
    });
    logs.push(log);
    return log;
  }

  async function collect(log: KinesisLog, table: string, after: Lsn): Promise<LogEntry[]> {
    const seen: LogEntry[] = [];
    subs.push(await log.subscribe(table, after, (e) => seen.push(e)));
    return seen;
  }

  async function put(table: string, body: string, partitionKey = table, stream = emu.kinesis.stream) {
    const r = await emu.clients.kinesis.send(
      new PutRecordCommand({ StreamName: stream, PartitionKey: partitionKey, Data: enc(body) }),
    );
    return asLsn(BigInt(r.SequenceNumber!));
  }

  async function rawRecords(table: string, stream = emu.kinesis.stream): Promise<string[]> {
    const { Shards } = await emu.clients.kinesis.send(new ListShardsCommand({ StreamName: stream }));
    const out: string[] = [];
    for (const s of shardChain(Shards ?? [], hashKeyOf(table))) {
      let it = (
        await emu.clients.kinesis.send(
          new GetShardIteratorCommand({
            StreamName: stream,
            ShardId: s.ShardId,
            ShardIteratorType: 'TRIM_HORIZON',
          }),
        )
      ).ShardIterator;
      for (;;) {
        const page = await emu.clients.kinesis.send(new GetRecordsCommand({ ShardIterator: it }));
        if (!page.Records?.length) break;
        for (const r of page.Records) if (r.PartitionKey === table) out.push(dec(r.Data!));
        it = page.NextShardIterator;
      }
    }
    return out;
  }

  it('compresses payloads (Brotli, "z":"br" on base64 "bin"), split into parts when large; reads both forms', async () => {
    const log = newLog(undefined, { maxRecordBytes: 4096 });
    const t = uniqueName('zip');
    const plain = newLog(undefined, { maxRecordBytes: 4096, compress: false });
    const old = await plain.append(t, enc('{"ops":[{"op":"insert","row":{"id":1}}]}'));
    const payload = bigTxn(2000);
    const big = await log.append(t, enc(payload));
    const tiny = await log.append(t, enc('{"ops":[{"op":"insert","row":{"id":2}}]}'));
    const raw = await rawRecords(t);
    const zipped = raw.filter((r) => r.includes('"z":"br"'));
    // Several parts, far fewer than the plain JSON would need (that is ~payload/4096).
    expect(zipped.length).toBeGreaterThan(1);
    expect(zipped.length).toBeLessThan(payload.length / 4096 / 3);
    expect(raw.filter((r) => !r.includes('"z"'))).toHaveLength(2); // small ones stay JSON
    const bad = await put(t, `{"table":"${t}","z":"br","bin":"AAAA"}`);
    const seen = await collect(log, t, ZERO_LSN);
    await waitUntil('all', () => seen.length >= 4);
    expect(seen.map((e) => e.lsn)).toEqual([old, big, tiny, bad]);
    expect(dec(seen[1].payload)).toBe(payload);
    expect(dec(seen[3].payload)).toBe(`{"table":"${t}","z":"br","bin":"AAAA"}`); // dead-lettered by the writer
  });

  it('splits a transaction over the record limit and delivers it whole, at its last part', async () => {
    const log = newLog(undefined, { maxRecordBytes: 4096, compress: false });
    const t = uniqueName('big');
    const small1 = await log.append(t, enc('{"ops":[{"op":"insert","row":{"id":1}}]}'));
    const payload = bigTxn(200);
    const [bigLsn, small2] = await Promise.all([
      log.append(t, enc(payload)),
      log.append(t, enc('{"ops":[{"op":"insert","row":{"id":2}}]}')),
    ]);
    const raw = await rawRecords(t);
    const parts = raw.filter((r) => r.includes('"parts":'));
    expect(parts.length).toBeGreaterThan(4);
    const seen = await collect(log, t, ZERO_LSN);
    await waitUntil('three transactions', () => seen.length >= 3);
    await new Promise((r) => setTimeout(r, 100));
    const order = [small1, small2, bigLsn].sort((a, b) => (a < b ? -1 : 1));
    expect(seen.map((e) => e.lsn)).toEqual(order);
    expect(dec(seen.find((e) => e.lsn === bigLsn)!.payload)).toBe(payload);
    // The big transaction's LSN is the sequence number of its last part.
    const { Shards } = await emu.clients.kinesis.send(
      new ListShardsCommand({ StreamName: emu.kinesis.stream }),
    );
    expect(shardChain(Shards ?? [], hashKeyOf(t))).toHaveLength(1);
    // A new process resuming after the first small one still gets the big one whole.
    const again = await collect(newLog(), t, small1);
    await waitUntil('resumed', () => again.length >= 2);
    expect(again.map((e) => e.lsn)).toEqual(order.slice(1));
  });

  it('delivers malformed records raw (so the writer dead-letters them) and carries on', async () => {
    const log = newLog();
    const t = uniqueName('bad');
    const def = tableDef(t);
    const bodies = [
      'not json at all',
      '{"ops":[{"op":"insert","row":{"id":1}}]}',
      `{"table":"${t}","txn":"a","part":3,"parts":2,"ops":[]}`,
      `{"table":"${t}","txn":"b","part":0,"parts":2,"ops":{"x":1}}`,
      `{"table":"${t}","ops":[{"op":"insert","row":{"id":"nope"}}]}`,
    ];
    const lsns: Lsn[] = [];
    for (const b of bodies) lsns.push(await put(t, b));
    // Another table's record under this partition key is not this table's.
    await put(t, '{"table":"someone_else","ops":[{"op":"insert","row":{"id":5}}]}');
    const good = await log.append(t, enc('{"ops":[{"op":"insert","row":{"id":7,"v":"ok"}}]}'));
    const seen = await collect(log, t, ZERO_LSN);
    await waitUntil('all entries', () => seen.length >= 6);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.map((e) => e.lsn)).toEqual([...lsns, good]);
    for (let i = 0; i < 4; i++) expect(dec(seen[i].payload)).toBe(bodies[i]);
    for (const i of [0, 2, 3])
      expect(() => decodeTransactionText(def.schema, dec(seen[i].payload))).toThrow();
    // No "table" member: delivered raw to the partition key's table; raw bytes that are
    // themselves a transaction apply (the documented shorthand), anything else dead-letters.
    expect(decodeTransactionText(def.schema, dec(seen[1].payload))).toHaveLength(1);
    // Well-formed record, bad row: unwrapped normally; the decoder rejects the value.
    expect(dec(seen[4].payload)).toBe('{"ops":[{"op":"insert","row":{"id":"nope"}}]}');
    expect(() => decodeTransactionText(def.schema, dec(seen[4].payload))).toThrow();
    expect(decodeTransactionText(def.schema, dec(seen[5].payload))).toHaveLength(1);
  });

  it('reads KPL-aggregated records (made by aws-kinesis-agg): each table’s user records as one transaction', async () => {
    const log = newLog();
    const t = uniqueName('kpl');
    const other = uniqueName('kplother');
    const def = tableDef(t);
    const agg = new RecordAggregator();
    const users = [
      `{"table":"${t}","txn":"k1","ops":[{"op":"insert","row":{"id":1,"v":"a"}}]}`,
      `{"table":"${other}","ops":[{"op":"insert","row":{"id":9}}]}`,
      `{"ops":[{"op":"insert","row":{"id":2,"v":"b"}},{"op":"upsert","row":{"id":1,"v":"a2"}}],"table":"${t}"}`,
      `{"table":"${t}","txn":"k1","ops":[{"op":"insert","row":{"id":99}}]}`, // a duplicate txn
      `{"table":"${t}","bin":"AAAA"}`, // not a JSON transaction: delivered as it is
    ];
    for (const u of users)
      agg.addUserRecord({ partitionKey: u.includes(other) ? other : t, data: Buffer.from(u) });
    const built = agg.build();
    // The aggregated record goes to the table's shard (KPL sends it with a hash key there).
    const r = await emu.clients.kinesis.send(
      new PutRecordCommand({ StreamName: emu.kinesis.stream, PartitionKey: t, Data: built.data }),
    );
    const seq = BigInt(r.SequenceNumber!);
    // A plain record after it, and a record with the magic but a broken checksum (taken as is).
    const plain = await put(t, `{"table":"${t}","ops":[{"op":"insert","row":{"id":3,"v":"c"}}]}`);
    const broken = new Uint8Array(built.data);
    broken[broken.length - 1] ^= 0xff;
    const brokenSeq = (
      await emu.clients.kinesis.send(
        new PutRecordCommand({ StreamName: emu.kinesis.stream, PartitionKey: t, Data: broken }),
      )
    ).SequenceNumber;
    const seen = await collect(log, t, ZERO_LSN);
    await waitUntil('all entries', () => seen.length >= 4);
    await new Promise((res) => setTimeout(res, 100));
    expect(seen.map((e) => e.lsn)).toEqual([seq, seq, plain, BigInt(brokenSeq!)]);
    const merged = decodeTransactionText(def.schema, dec(seen[0].payload));
    expect(merged.map((o) => [o.op, o.values[0]])).toEqual([
      ['insert', 1n],
      ['insert', 2n],
      ['upsert', 1n],
    ]);
    expect(dec(seen[1].payload)).toBe(users[4]);
    expect(decodeTransactionText(def.schema, dec(seen[2].payload))).toHaveLength(1);
    expect(() => decodeTransactionText(def.schema, dec(seen[3].payload))).toThrow();
  });

  it('skips duplicate records and parts of one transaction (a retried put that landed twice)', async () => {
    const log = newLog();
    const t = uniqueName('dup');
    const one = `{"table":"${t}","txn":"T1","ops":[{"op":"insert","row":{"id":1}}]}`;
    const p0 = `{"table":"${t}","txn":"T2","part":0,"parts":2,"ops":[{"op":"insert","row":{"id":2}}]}`;
    const p1 = `{"table":"${t}","txn":"T2","part":1,"parts":2,"ops":[{"op":"insert","row":{"id":3}}]}`;
    const s1 = await put(t, one);
    await put(t, one);
    await put(t, p0);
    await put(t, p0);
    const s2 = await put(t, p1);
    await put(t, p1);
    await put(t, one);
    const s3 = await put(t, `{"table":"${t}","txn":"T3","ops":[{"op":"insert","row":{"id":4}}]}`);
    const seen = await collect(log, t, ZERO_LSN);
    await waitUntil('entries', () => seen.length >= 3);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.map((e) => e.lsn)).toEqual([s1, s2, s3]);
    expect(dec(seen[1].payload)).toBe(
      '{"ops":[{"op":"insert","row":{"id":2}},{"op":"insert","row":{"id":3}}]}',
    );

    // Resuming after s1 reads the window before it back: the copy of T1 after s1 is still a
    // duplicate, and T2's first part (before the resume point) still completes T2.
    const resumed = await collect(newLog(), t, s1);
    await waitUntil('resumed entries', () => resumed.length >= 2);
    await new Promise((r) => setTimeout(r, 200));
    expect(resumed.map((e) => e.lsn)).toEqual([s2, s3]);
    expect(dec(resumed[0].payload)).toBe(dec(seen[1].payload));
  });

  it('hands the decoded form to a subscriber in the appending process; lastLsn is best effort', async () => {
    const log = newLog();
    const t = uniqueName('dec');
    const decoded = [{ op: 'insert', values: [1], key: '1' }];
    const lsn = await log.append(t, enc('{"ops":[{"op":"insert","row":{"id":1}}]}'), decoded);
    const seen = await collect(log, t, ZERO_LSN);
    await waitUntil('entry', () => seen.length >= 1);
    expect(seen[0].decoded).toBe(decoded);
    const other = newLog();
    expect(await other.lastLsn(t)).toBe(0n);
    const seen2 = await collect(other, t, ZERO_LSN);
    await waitUntil('entry', () => seen2.length >= 1);
    expect(seen2[0].decoded).toBeUndefined();
    expect(await other.lastLsn(t)).toBe(lsn);
  });

  it('follows a table across a shard split', async () => {
    const stream = uniqueName('split');
    await createStream(emu.clients.kinesis, stream, 1);
    const log = newLog(stream);
    const t = uniqueName('rs');
    const before: Lsn[] = [];
    for (let i = 0; i < 5; i++)
      before.push(await log.append(t, enc(`{"ops":[{"op":"insert","row":{"id":${i}}}]}`)));
    const seen = await collect(log, t, ZERO_LSN);
    await waitUntil('before the split', () => seen.length >= 5);
    const { Shards } = await emu.clients.kinesis.send(new ListShardsCommand({ StreamName: stream }));
    const parent = Shards![0];
    const mid =
      (BigInt(parent.HashKeyRange!.StartingHashKey!) + BigInt(parent.HashKeyRange!.EndingHashKey!)) / 2n;
    await emu.clients.kinesis.send(
      new SplitShardCommand({
        StreamName: stream,
        ShardToSplit: parent.ShardId,
        NewStartingHashKey: String(mid),
      }),
    );
    for (;;) {
      const d = await emu.clients.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
      if (d.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const after: Lsn[] = [];
    for (let i = 5; i < 10; i++)
      after.push(await log.append(t, enc(`{"ops":[{"op":"insert","row":{"id":${i}}}]}`)));
    const listed = await emu.clients.kinesis.send(new ListShardsCommand({ StreamName: stream }));
    const chain = shardChain(listed.Shards ?? [], hashKeyOf(t));
    expect(chain).toHaveLength(2);
    expect(chain[1].ParentShardId).toBe(parent.ShardId);
    await waitUntil('after the split', () => seen.length >= 10);
    expect(seen.map((e) => e.lsn)).toEqual([...before, ...after]);
    // Resuming from an LSN in the closed parent continues into the child; from one in the child too.
    const fromParent = await collect(newLog(stream), t, before[2]);
    const fromChild = await collect(newLog(stream), t, after[1]);
    await waitUntil('resumed subscriptions', () => fromParent.length >= 7 && fromChild.length >= 3);
    await new Promise((r) => setTimeout(r, 100));
    expect(fromParent.map((e) => e.lsn)).toEqual([...before.slice(3), ...after]);
    expect(fromChild.map((e) => e.lsn)).toEqual(after.slice(2));
  });

  it('fails to subscribe to a stream that does not exist', async () => {
    const log = newLog('no-such-stream', { retry: { maxAttempts: 2, baseDelayMs: 1 } });
    await expect(log.subscribe('t', asLsn(0n), () => undefined)).rejects.toThrow();
  });
});
