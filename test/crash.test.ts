/**
 * Crash test (invariant 1 and 2): a stream of write transactions with random sizes runs against
 * the service as a child process, which is killed with SIGKILL at random moments — with tiny
 * thresholds so flushes, read snapshots, Iceberg commits, compaction and garbage collection are
 * always in progress — and restarted, round after round, on the same data folder.
 *
 * After each restart: every acknowledged write is there exactly once, a request in flight at
 * the kill is all there or all absent, and reads during the run at each returned LSN matched a
 * reference model. `kv` has a primary key (upserts/deletes); `events` has none, so a transaction
 * applied twice would show as duplicate rows.
 *
 * `CRASH_ROUNDS` sets the rounds (10 in `npm test`; `npm run test:crash` runs 120).
 */

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Lsn, lsnBefore, lsnFromJson } from '../lib/lsn.ts';
import { parseExactJson } from '../lib/schema/exact-json.ts';
import { buildSchema } from '../lib/schema/table-schema.ts';
import { type DecodedOp, decodeTransaction } from '../lib/txn/transaction.ts';
import { ReferenceModel, rng } from './support/model.ts';
import { type ServiceProcess, startServiceProcess } from './support/service-process.ts';

const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 10);
const SEED = Number(process.env.CRASH_SEED ?? 4242);
/** A kv row written after every restart (outside the ids the writes use). */
const SENTINEL_ID = 999_999;

const ENV = {
  MOONLINK_MEMSLICE_MAX_ROWS: '40',
  MOONLINK_SNAPSHOT_INTERVAL_MS: '50',
  MOONLINK_COMMIT_INTERVAL_MS: '250',
  MOONLINK_TARGET_FILE_BYTES: '16384',
  MOONLINK_COMPACT_MIN_SMALL_FILES: '3',
  MOONLINK_GC_INTERVAL_MS: '150',
  MOONLINK_GC_GRACE_MS: '0',
  MOONLINK_ORPHAN_GRACE_MS: '2000',
};

const kvColumns = [
  { name: 'id', type: 'long', nullable: false },
  { name: 'v', type: 'string' },
  { name: 'n', type: 'long' },
];
const kvSchema = buildSchema(kvColumns, ['id']);

let dir: string;
/** The service running now: stopped before its folder is removed, even when the test fails. */
let running: ServiceProcess | undefined;
afterAll(async () => {
  await running?.kill('SIGKILL');
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, any> }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: parseExactJson(await r.text()) as Record<string, any> };
}

async function scan(
  base: string,
  table: string,
  minLsn: Lsn | undefined,
): Promise<{ lsn: Lsn; rows: Record<string, unknown>[] }> {
  const q = minLsn === undefined ? '' : `minLsn=${minLsn}&`;
  const r = await fetch(`${base}/tables/${table}/rows?${q}limit=100000`);
  const text = await r.text();
  if (r.status !== 200) throw new Error(`scan ${table}: ${r.status} ${text}`);
  const j = parseExactJson(text) as {
    lsn: number | string;
    rows: Record<string, unknown>[];
    nextCursor?: string;
  };
  expect(j.nextCursor).toBeUndefined();
  return { lsn: lsnFromJson(j.lsn), rows: j.rows };
}

function kvText(model: ReferenceModel, row: Record<string, unknown>): string {
  return model.rowText([
    BigInt(row.id as number),
    row.v ?? null,
    row.n === null || row.n === undefined ? null : BigInt(row.n as number),
  ]);
}

describe('crash and restart', () => {
  it(
    `survives ${ROUNDS} SIGKILLs at random moments with nothing lost or doubled`,
    async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlcrash-'));
      const env = { ...ENV, MOONLINK_DATA_DIR: dir };
      const r = rng(SEED);
      const kv = new ReferenceModel(kvSchema);
      const events = new Map<number, number>(); // id → round it was acknowledged in
      let nextEventId = 1;
      let kvLsn = 0n;
      let requestNo = 0;
      let readsChecked = 0;
      let acked = 0;
      let inFlightSeen = 0;
      let maxReadLsn = 0n;
      let latestReads = 0;

      let svc: ServiceProcess = await startServiceProcess(env);
      running = svc;
      expect(
        (await post(`${svc.url}/tables`, { name: 'kv', columns: kvColumns, primaryKey: ['id'] })).status,
      ).toBe(201);
      expect(
        (
          await post(`${svc.url}/tables`, {
            name: 'events',
            columns: [
              { name: 'id', type: 'long' },
              { name: 'payload', type: 'string' },
            ],
          })
        ).status,
      ).toBe(201);

      for (let round = 0; round < ROUNDS; round++) {
        const killAt = Date.now() + 100 + Math.floor(r() * 900);
        let pendingKv: { marker: number; ops: DecodedOp[] } | undefined;
        let pendingEvents: number[] | undefined;
        let killing = false;
        const killer = (async () => {
          await new Promise((res) => setTimeout(res, Math.max(0, killAt - Date.now())));
          killing = true;
          await svc.kill('SIGKILL');
        })();
        // Drive writes until the kill cuts a request.
        for (;;) {
          requestNo++;
          try {
            if (r() < 0.6) {
              const marker = 1_000_000 + requestNo;
              const body = { ops: [] as { op: string; row: Record<string, unknown> }[] };
              const count = 1 + Math.floor(r() * (r() < 0.1 ? 300 : 20));
              for (let i = 0; i < count; i++) {
                const id = Math.floor(r() * 500);
                const x = r();
                if (x < 0.2) body.ops.push({ op: 'delete', row: { id } });
                else
                  body.ops.push({
                    op: x < 0.6 ? 'upsert' : 'insert',
                    row: {
                      id,
                      v: `r${round}-${requestNo}-${i}`,
                      n: String(BigInt(requestNo) * 10_000_000_000n + BigInt(i)),
                    },
                  });
              }
              body.ops.push({ op: 'upsert', row: { id: marker, v: 'marker', n: null } });
              const ops = decodeTransaction(kvSchema, parseExactJson(JSON.stringify(body)));
              pendingKv = { marker, ops };
              const res = await post(`${svc.url}/tables/kv/rows`, body);
              expect(res.status, JSON.stringify(res.json)).toBe(200);
              const lsn = lsnFromJson(res.json.lsn);
              expect(lsn).toBeGreaterThan(kvLsn);
              kv.commit(lsn, ops);
              kvLsn = lsn;
              pendingKv = undefined;
              acked++;
              if (r() < 0.1) {
                // Without minLsn: never older than any read before, this process or the last.
                const latest = await scan(svc.url, 'kv', undefined);
                expect(latest.lsn).toBeGreaterThanOrEqual(maxReadLsn);
                maxReadLsn = latest.lsn;
                latestReads++;
              }
              if (r() < 0.15) {
                // A read at the returned LSN sees exactly the model at the snapshot's LSN.
                const got = await scan(svc.url, 'kv', lsn);
                expect(got.lsn).toBeGreaterThanOrEqual(lsn);
                expect(got.rows.map((row) => kvText(kv, row)).sort()).toEqual(kv.at(got.lsn));
                readsChecked++;
              }
            } else {
              const ids = Array.from({ length: 1 + Math.floor(r() * 30) }, () => nextEventId++);
              pendingEvents = ids;
              const res = await post(`${svc.url}/tables/events/rows`, {
                ops: ids.map((id) => ({ op: 'insert', row: { id, payload: `e${id}` } })),
              });
              expect(res.status).toBe(200);
              for (const id of ids) events.set(id, round);
              pendingEvents = undefined;
              acked++;
            }
          } catch (e) {
            if (!killing) throw e;
            break; // killed mid-request
          }
        }
        await killer;

        svc = await startServiceProcess(env);
        running = svc;
        // Reads without minLsn as soon as the process answers, while it replays its log: never
        // older than before the crash, never going back, and covering every acknowledged write.
        for (let i = 0; i < 5; i++) {
          const latest = await scan(svc.url, 'kv', undefined);
          expect(latest.lsn, `round ${round}: a read went back after the restart`).toBeGreaterThanOrEqual(
            maxReadLsn,
          );
          expect(
            latest.lsn,
            `round ${round}: a read after the restart misses acknowledged writes`,
          ).toBeGreaterThanOrEqual(kvLsn);
          maxReadLsn = latest.lsn;
          latestReads++;
        }
        // A write right after the restart takes an LSN beyond everything the log held, so reads
        // at it show all that survived (a read at an older LSN may be served while the log is
        // still being replayed, before the request the kill cut is applied).
        const sentinel = { op: 'upsert', row: { id: SENTINEL_ID, v: `restart-${round}`, n: null } };
        const sres = await post(`${svc.url}/tables/kv/rows`, { ops: [sentinel] });
        expect(sres.status, JSON.stringify(sres.json)).toBe(200);
        const sentinelLsn = lsnFromJson(sres.json.lsn);
        expect(sentinelLsn).toBeGreaterThan(kvLsn);
        // kv: every acknowledged transaction, plus the in-flight one only if all of it landed
        // (somewhere between the last acknowledged LSN and the sentinel's).
        const after = await scan(svc.url, 'kv', sentinelLsn);
        const ids = new Set(after.rows.map((row) => Number(row.id)));
        if (pendingKv && ids.has(pendingKv.marker)) {
          kv.commit(lsnBefore(sentinelLsn), pendingKv.ops);
          inFlightSeen++;
        }
        kv.commit(
          sentinelLsn,
          decodeTransaction(kvSchema, parseExactJson(JSON.stringify({ ops: [sentinel] }))),
        );
        kvLsn = sentinelLsn;
        expect(after.rows.map((row) => kvText(kv, row)).sort(), `round ${round}`).toEqual(kv.at(after.lsn));
        // events: each acknowledged id exactly once; the in-flight batch all or nothing.
        const eventSentinel = nextEventId++;
        const eres = await post(`${svc.url}/tables/events/rows`, {
          ops: [{ op: 'insert', row: { id: eventSentinel, payload: 'restart' } }],
        });
        expect(eres.status).toBe(200);
        events.set(eventSentinel, round);
        const ev = await scan(svc.url, 'events', lsnFromJson(eres.json.lsn));
        const counts = new Map<number, number>();
        for (const row of ev.rows) counts.set(Number(row.id), (counts.get(Number(row.id)) ?? 0) + 1);
        for (const [id, c] of counts) expect(c, `event ${id} appears ${c} times`).toBe(1);
        for (const id of events.keys()) expect(counts.has(id), `acknowledged event ${id} lost`).toBe(true);
        if (pendingEvents) {
          const present = pendingEvents.filter((id) => counts.has(id)).length;
          expect([0, pendingEvents.length]).toContain(present);
          if (present > 0) {
            for (const id of pendingEvents) events.set(id, round);
            inFlightSeen++;
          }
        }
        expect(counts.size).toBe(events.size);
      }
      await svc.kill('SIGTERM');
      console.log(
        `crash test: ${ROUNDS} SIGKILL restarts, ${acked} acknowledged transactions, ${readsChecked} reads checked, ${latestReads} reads without minLsn never going back, ${inFlightSeen} in-flight transactions found applied, ${events.size} events exactly once`,
      );
    },
    60_000 + ROUNDS * 10_000,
  );
});
