/**
 * The AWS shape end to end on emulators (s3rver, dynalite, kinesalite over real HTTP): tables
 * created through the API, writes over HTTP and as records a producer puts on the stream
 * directly, reads, a malformed record dead-lettered, the writer restarted (with and without a
 * final flush) and everything read back exactly once; then two writers on one table, where the
 * newer one fences the older and no commit is lost or mixed.
 *
 * Not covered here: s3rver ignores If-None-Match, so the create-only guard on metadata files
 * is exercised against S3 semantics only in the adapter's fault tests; fencing below rests on
 * DynamoDB's conditional writes, which dynalite implements.
 */
import { PutRecordCommand } from '@aws-sdk/client-kinesis';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsWriter, startAwsWriter } from '../lib/aws/aws-writer.ts';
import { serviceConfigFromEnv } from '../lib/config.ts';
import { IcebergTable } from '../lib/iceberg/iceberg-table.ts';
import { parseExactJson } from '../lib/schema/exact-json.ts';
import { JsonLogger, silentLogger } from '../lib/util/logger.ts';
import { type LocalAws, startLocalAws } from '../localstack/local-aws.ts';

let local: LocalAws;
const config = serviceConfigFromEnv({
  PORT: '0',
  MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
  MOONLINK_COMMIT_INTERVAL_MS: '600000',
  MOONLINK_GC_GRACE_MS: '1000',
  MOONLINK_MAX_WAIT_MS: '20000',
});

beforeAll(async () => {
  local = await startLocalAws(
    config,
    process.env.AWS_LOCAL_DEBUG ? new JsonLogger({}, 'WARN') : silentLogger,
  );
}, 120_000);
afterAll(async () => {
  await local?.close();
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

async function rows(table: string, minLsn: unknown): Promise<Record<string, unknown>[]> {
  const r = await call('GET', `/tables/${table}/rows?minLsn=${minLsn}&limit=100000`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.rows;
}

describe('AWS shape on emulators', () => {
  it('creates, ingests over HTTP and from the stream, reads, dead-letters bad records', async () => {
    const created = await call('POST', '/tables', {
      name: 'events',
      columns: [
        { name: 'id', type: 'long' },
        { name: 'note', type: 'string' },
      ],
      primaryKey: ['id'],
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(String(created.body.metadataLocation)).toMatch(
      /^s3:\/\/moonlink-data\/warehouse\/tables\/events\/metadata\/v1\.metadata\.json$/,
    );
    const w = await call('POST', '/tables/events/rows?wait=visible', {
      ops: [1, 2, 3].map((id) => ({ op: 'insert', row: { id, note: `http-${id}` } })),
    });
    expect(w.status, JSON.stringify(w.body)).toBe(200);
    expect(typeof w.body.lsn === 'string' || typeof w.body.lsn === 'bigint').toBe(true); // Kinesis sequence numbers exceed 2^53
    expect((await rows('events', w.body.lsn)).map((r) => Number(r.id)).sort()).toEqual([1, 2, 3]);

    // A producer writing straight to the stream, in the documented record format.
    const kinesis = local.emulators.clients.kinesis;
    const direct = await kinesis.send(
      new PutRecordCommand({
        StreamName: local.config.stream,
        PartitionKey: 'events',
        Data: new TextEncoder().encode(
          JSON.stringify({
            table: 'events',
            ops: [
              { op: 'upsert', row: { id: 2, note: 'direct' } },
              { op: 'delete', row: { id: 3 } },
            ],
          }),
        ),
      }),
    );
    const bad = await kinesis.send(
      new PutRecordCommand({
        StreamName: local.config.stream,
        PartitionKey: 'events',
        Data: new TextEncoder().encode('{"table":"events","ops":[{"op":"insert","row":{"id":"x"}}]}'),
      }),
    );
    const after = await rows('events', direct.SequenceNumber);
    expect(after.map((r) => `${r.id}:${r.note}`).sort()).toEqual(['1:http-1', '2:direct']);
    // The malformed record went to the dead-letter location with its reason.
    const s3 = local.emulators.clients.s3;
    let letters: string[] = [];
    for (let i = 0; i < 50 && letters.length === 0; i++) {
      await rows('events', bad.SequenceNumber).catch(() => undefined);
      const listed = await s3.send(
        new ListObjectsV2Command({ Bucket: local.config.bucket, Prefix: 'warehouse/deadletter/events/' }),
      );
      letters = (listed.Contents ?? []).map((o) => o.Key!);
      if (letters.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(letters).toHaveLength(1);
    const letter = JSON.parse(
      await (
        await s3.send(new GetObjectCommand({ Bucket: local.config.bucket, Key: letters[0] }))
      ).Body!.transformToString(),
    );
    expect(letter.reason).toMatch(/ops\[0\]\.row\.id: expected long/);

    const f = await call('POST', '/tables/events/flush');
    expect(f.status).toBe(200);
    expect(String(f.body.metadataLocation)).toMatch(
      /^s3:\/\/moonlink-data\/warehouse\/tables\/events\/metadata\/v\d+\.metadata\.json$/,
    );
  });

  it('a restarted writer resumes from its Iceberg commit and the stream, applying each record once', async () => {
    const before = await rows('events', 0);
    // More writes after the last commit, then a restart without a final flush (as after a crash).
    const w = await call('POST', '/tables/events/rows', {
      ops: [10, 11].map((id) => ({ op: 'insert', row: { id, note: 'late' } })),
    });
    await local.restartWriter({ flush: false });
    const again = await rows('events', w.body.lsn);
    expect(again.map((r) => Number(r.id)).sort((a, b) => a - b)).toEqual(
      [...before.map((r) => Number(r.id)), 10, 11].sort((a, b) => a - b),
    );
    // And with a clean restart.
    await local.restartWriter({ flush: true });
    const third = await rows('events', w.body.lsn);
    expect(third).toHaveLength(again.length);
    const described = await call('GET', '/tables/events');
    expect(described.body.rows).toBe(again.length);
  });

  it('a second writer on the same table fences the first; no commit is lost or mixed', async () => {
    expect(
      (
        await call('POST', '/tables', {
          name: 'fenced',
          columns: [
            { name: 'id', type: 'long' },
            { name: 'v', type: 'long' },
          ],
          primaryKey: ['id'],
        })
      ).status,
    ).toBe(201);
    const first = local.writer;
    const acked: bigint[] = [];
    const write = async (i: number) => {
      const r = await call('POST', '/tables/fenced/rows', {
        ops: [
          { op: 'upsert', row: { id: i % 7, v: i } },
          { op: 'insert', row: { id: 1000 + i, v: i } },
        ],
      });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      acked.push(BigInt(r.body.lsn));
    };
    for (let i = 0; i < 5; i++) await write(i);
    await first.writer.commit('fenced');
    // A second writer process takes the table over (a new ECS task, say) while the first still runs.
    const second: AwsWriter = await startAwsWriter(local.config, config.engine, silentLogger, {
      port: 0,
      host: '127.0.0.1',
      syncIntervalMs: 60_000,
    });
    for (let i = 5; i < 10; i++) await write(i);
    // The first writer's next commit fails on the epoch; it stops serving the table.
    await expect(first.writer.commit('fenced')).rejects.toThrow(/fenced|closed|epoch/);
    const committed = await second.writer.commit('fenced');
    expect(committed.lsn).toBeGreaterThanOrEqual(acked[acked.length - 1]);
    const iceberg = await IcebergTable.load(
      second.adapters.store,
      second.adapters.store.keyFromUri(committed.metadataLocation!)!,
    );
    const history = iceberg.metadata.snapshots.map((s) => BigInt(s.summary['moonlink.lsn']));
    expect([...history].sort((a, b) => (a < b ? -1 : 1))).toEqual(history); // one line of commits, LSNs increasing
    const state = await iceberg.currentState();
    const total =
      state.dataFiles.reduce((s, d) => s + d.recordCount, 0) -
      [...state.deletes.values()].reduce((s, b) => s + b.size, 0);
    expect(total).toBe(7 + 10); // ids 0..6 upserted, 1000..1009 inserted: all there, none twice
    await second.close({ flush: false });
  });
  it('a dropped table recreated under the same name does not replay the old records', async () => {
    const cols = { columns: [{ name: 'id', type: 'long' }], primaryKey: ['id'] };
    expect((await call('POST', '/tables', { name: 'reborn', ...cols })).status).toBe(201);
    expect(
      (await call('POST', '/tables/reborn/rows?wait=visible', { ops: [{ op: 'insert', row: { id: 1 } }] }))
        .status,
    ).toBe(200);
    expect((await call('DELETE', '/tables/reborn')).status).toBe(204);
    expect((await call('POST', '/tables', { name: 'reborn', ...cols })).status).toBe(201);
    const w = await call('POST', '/tables/reborn/rows', { ops: [{ op: 'insert', row: { id: 2 } }] });
    expect((await rows('reborn', w.body.lsn)).map((r) => Number(r.id))).toEqual([2]);
  });
});
