/**
 * The Postgres CDC source end to end against a real PostgreSQL: a concurrent mixed workload
 * mirrors exactly; large transactions stream (spilling to Parquet) and become visible only at
 * commit; aborted ones and rolled-back savepoints leave nothing; truncates; the slot is only
 * confirmed up to what Iceberg holds; the writer killed (in process, and a SIGKILLed child
 * process) and Postgres restarted mid-stream both end equal; dropping the table drops the slot.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseExactJson } from '../lib/schema/exact-json.ts';
import { parsePgLsn } from '../lib/sources/postgres/pg-text.ts';
import { rng } from './support/model.ts';
import {
  attach,
  eventually,
  type MoonlinkHandle,
  type PgCluster,
  rowText,
  startMoonlink,
  startPostgres,
  waitForMirror,
} from './support/postgres.ts';
import { startServiceProcess } from './support/service-process.ts';

let pgc: PgCluster;
const dirs: string[] = [];
const open: MoonlinkHandle[] = [];

beforeAll(async () => {
  pgc = await startPostgres();
});

afterAll(async () => {
  for (const m of open) await m.close({ flush: false }).catch(() => undefined);
  await pgc?.stop();
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

async function tempDir(prefix: string): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function moonlink(dir: string, env: Record<string, string> = {}): Promise<MoonlinkHandle> {
  const m = await startMoonlink(dir, env);
  open.push(m);
  return m;
}

const COLS = ['id', 'bal', 'note', 'n'];

async function accountsTable(name: string, rows: number): Promise<void> {
  await pgc.sql(`CREATE TABLE ${name} (id bigint PRIMARY KEY, bal numeric(12,2) NOT NULL, note text, n int)`);
  if (rows > 0)
    await pgc.sql(
      `INSERT INTO ${name} SELECT g, g * 1.25, 'seed ' || g, 0 FROM generate_series(1, ${rows}) g`,
    );
}

/**
 * pgbench-style sessions: each transaction inserts, updates (some move the key), deletes, and
 * some roll back, whole or to a savepoint. Session s owns the ids ≡ s (mod sessions).
 */
async function workload(
  table: string,
  opts: { sessions: number; txns: number; seed: number; stop?: () => boolean },
): Promise<{ committed: number; rolledBack: number }> {
  let committed = 0;
  let rolledBack = 0;
  await Promise.all(
    Array.from({ length: opts.sessions }, async (_, s) => {
      const r = rng(opts.seed * 100 + s);
      const c = new pg.Client({ connectionString: pgc.url });
      c.on('error', () => undefined);
      await c.connect();
      const pick = () => BigInt(Math.floor(r() * 400)) * BigInt(opts.sessions) + BigInt(s);
      try {
        for (let t = 0; t < opts.txns && !opts.stop?.(); t++) {
          try {
            await c.query('BEGIN');
            const ops = 1 + Math.floor(r() * 4);
            for (let i = 0; i < ops; i++) {
              const x = r();
              const id = pick();
              if (x < 0.4) {
                await c.query(
                  `INSERT INTO ${table} VALUES ($1, $2, $3, 0) ON CONFLICT (id) DO UPDATE SET n = ${table}.n + 1`,
                  [id, (r() * 1000).toFixed(2), `s${s} t${t}`],
                );
              } else if (x < 0.65) {
                await c.query(`UPDATE ${table} SET bal = bal + 1.01, n = n + 1 WHERE id = $1`, [id]);
              } else if (x < 0.75) {
                // Key change: the row moves to another id of this session's class.
                const to = id + BigInt(opts.sessions) * 1_000_000n;
                await c.query(`UPDATE ${table} SET id = $2, note = 'moved' WHERE id = $1`, [id, to]);
              } else if (x < 0.9) {
                await c.query(`DELETE FROM ${table} WHERE id = $1`, [id]);
              } else {
                await c.query('SAVEPOINT sp');
                await c.query(`UPDATE ${table} SET note = 'rolled back' WHERE id = $1`, [id]);
                await c.query(
                  `INSERT INTO ${table} VALUES ($1, 0, 'rolled back', 0) ON CONFLICT DO NOTHING`,
                  [pick() + 7_000_000n * BigInt(opts.sessions)],
                );
                await c.query('ROLLBACK TO SAVEPOINT sp');
              }
            }
            if (r() < 0.15) {
              await c.query('ROLLBACK');
              rolledBack++;
            } else {
              await c.query('COMMIT');
              committed++;
            }
          } catch {
            await c.query('ROLLBACK').catch(() => undefined);
            rolledBack++;
          }
        }
      } finally {
        await c.end().catch(() => undefined);
      }
    }),
  );
  return { committed, rolledBack };
}

async function expectMirror(
  ml: MoonlinkHandle,
  name: string,
  table: string,
  timeoutMs = 30_000,
): Promise<void> {
  const { pg: p, moonlink: m } = await waitForMirror(ml, name, pgc, table, COLS, timeoutMs);
  expect(m.length).toBe(p.length);
  expect(m).toEqual(p);
}

async function sourceStatus(ml: MoonlinkHandle, name: string): Promise<Record<string, any>> {
  return (await ml.describe(name)).writer?.source ?? {};
}

describe('Postgres CDC', () => {
  it('mirrors a concurrent mixed workload (inserts, updates, key changes, deletes, rollbacks)', async () => {
    await accountsTable('acct_mixed', 300);
    const ml = await moonlink(await tempDir('mlcdc-mixed-'));
    await attach(ml, 'acct_mixed', pgc, 'acct_mixed');
    // Writes run while the initial copy and the stream start, and after.
    const during = await workload('acct_mixed', { sessions: 4, txns: 80, seed: 1 });
    await eventually(async () => (await sourceStatus(ml, 'acct_mixed')).state === 'streaming', 20_000);
    const after = await workload('acct_mixed', { sessions: 4, txns: 80, seed: 11 });
    expect(during.committed + after.committed).toBeGreaterThan(300);
    expect(during.rolledBack + after.rolledBack).toBeGreaterThan(20);
    await expectMirror(ml, 'acct_mixed', 'acct_mixed');
    const st = await sourceStatus(ml, 'acct_mixed');
    expect(st.state).toBe('streaming');
    expect(st.copiedRows).toBeGreaterThanOrEqual(300);
    expect(st.transactions).toBeGreaterThan(100);
    expect(typeof st.lagBytes).toBe('number');
    expect(st.lagBytes, JSON.stringify(st)).toBeLessThan(1_000_000);
    expect(typeof st.secondsSinceLastMessage).toBe('number');
  });

  it('streams a transaction larger than the memory threshold; visible only at commit; aborts leave nothing', async () => {
    await accountsTable('acct_big', 10);
    const ml = await moonlink(await tempDir('mlcdc-big-'), {
      MOONLINK_MEMSLICE_MAX_ROWS: '500',
      MOONLINK_COMPACTION: 'false',
    });
    await attach(ml, 'acct_big', pgc, 'acct_big');
    await expectMirror(ml, 'acct_big', 'acct_big');
    const c = new pg.Client({ connectionString: pgc.url });
    await c.connect();
    try {
      // A committed big transaction, with a rolled-back savepoint in the middle of it.
      await c.query('BEGIN');
      await c.query(`INSERT INTO acct_big SELECT g, g, 'big', 1 FROM generate_series(1000, 15999) g`);
      await c.query(`UPDATE acct_big SET n = 2 WHERE id BETWEEN 1 AND 5`);
      await c.query('SAVEPOINT s1');
      await c.query(`INSERT INTO acct_big SELECT g, g, 'savepoint', 1 FROM generate_series(20000, 23999) g`);
      await c.query(`UPDATE acct_big SET note = 'undone' WHERE id BETWEEN 1000 AND 1999`);
      await c.query(`DELETE FROM acct_big WHERE id BETWEEN 2000 AND 2999`);
      await c.query('ROLLBACK TO SAVEPOINT s1');
      await c.query(`UPDATE acct_big SET id = id + 100000 WHERE id BETWEEN 3000 AND 3099`);
      await c.query(`DELETE FROM acct_big WHERE id BETWEEN 4000 AND 4099`);
      // Postgres streams it (logical_decoding_work_mem=64kB) while it is still open.
      await eventually(async () => (await sourceStatus(ml, 'acct_big')).openStreams >= 1, 20_000, 'a stream');
      // Before the commit, its rows were already spilled to Parquet files the table does not list yet.
      const handler = await ml.svc.writer.open('acct_big');
      const parquetFiles = async () =>
        (await fs.readdir(path.join(ml.dir, 'objects', 'tables', 'acct_big', 'data'))).filter((f) =>
          f.endsWith('.parquet'),
        ).length;
      await eventually(
        async () => (await parquetFiles()) - handler.dataFiles().length >= 10,
        20_000,
        'spilled files',
      );
      const before = await ml.scan('acct_big');
      expect(before.length).toBe(10);
      await c.query('COMMIT');
      await expectMirror(ml, 'acct_big', 'acct_big');
      // …and joined the table at the commit.
      expect(handler.dataFiles().length).toBeGreaterThanOrEqual(15);
      const snapshot = await ml.scan('acct_big');
      expect(snapshot.some((r) => r.note === 'undone' || r.note === 'savepoint')).toBe(false);
      // The savepoint's changes were streamed, then rolled back by a Stream Abort of the subtransaction.
      expect((await sourceStatus(ml, 'acct_big')).savepointRollbacks).toBeGreaterThanOrEqual(1);

      // An aborted big transaction leaves nothing.
      await c.query('BEGIN');
      await c.query(`INSERT INTO acct_big SELECT g, g, 'aborted', 1 FROM generate_series(50000, 64999) g`);
      await c.query(`DELETE FROM acct_big WHERE id < 1000`);
      await eventually(async () => (await sourceStatus(ml, 'acct_big')).openStreams >= 1, 20_000, 'a stream');
      await c.query('ROLLBACK');
      await c.query(`INSERT INTO acct_big VALUES (99, 1, 'after abort', 0)`);
      await expectMirror(ml, 'acct_big', 'acct_big');
      expect((await ml.scan('acct_big')).some((r) => r.note === 'aborted')).toBe(false);
      expect((await sourceStatus(ml, 'acct_big')).openStreams).toBe(0);

      // Truncates: alone, and emptied-then-refilled in one transaction.
      await c.query(`TRUNCATE acct_big`);
      await expectMirror(ml, 'acct_big', 'acct_big');
      expect((await ml.scan('acct_big')).length).toBe(0);
      await c.query(`INSERT INTO acct_big VALUES (1, 1, 'a', 0), (2, 2, 'b', 0)`);
      await c.query('BEGIN');
      await c.query(`INSERT INTO acct_big VALUES (3, 3, 'c', 0)`);
      await c.query(`TRUNCATE acct_big`);
      await c.query(`INSERT INTO acct_big VALUES (4, 4, 'd', 0)`);
      await c.query('COMMIT');
      await expectMirror(ml, 'acct_big', 'acct_big');
      expect((await ml.scan('acct_big')).map((r) => r.note)).toEqual(['d']);
    } finally {
      await c.end();
    }
  });

  it('confirms the slot only up to what Iceberg holds, and reports lag', async () => {
    await accountsTable('acct_durable', 5);
    const ml = await moonlink(await tempDir('mlcdc-durable-'), { MOONLINK_COMMIT_INTERVAL_MS: '600000' });
    const created = await attach(ml, 'acct_durable', pgc, 'acct_durable');
    const slot = created.source.postgres.slot as string;
    const confirmedFlush = async () =>
      parsePgLsn(
        (
          await pgc.sql<{ l: string }>(
            `SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1`,
            [slot],
          )
        )[0].l,
      );
    await expectMirror(ml, 'acct_durable', 'acct_durable');
    // The copy's flush makes the consistent point durable.
    await eventually(
      async () => (await ml.describe('acct_durable')).committedLsn > 0,
      20_000,
      'first commit',
    );
    // The source learns of a commit from the catalog pointer (polled each second) and only then
    // confirms it to Postgres: wait for that before taking the slot's position as the baseline.
    const copyCommitted = BigInt((await ml.describe('acct_durable')).committedLsn);
    await eventually(async () => (await confirmedFlush()) >= copyCommitted, 10_000, 'copy confirmed');
    const afterCopy = await confirmedFlush();
    for (let i = 0; i < 20; i++) await pgc.sql(`INSERT INTO acct_durable VALUES (${100 + i}, 1, 'x', 0)`);
    await expectMirror(ml, 'acct_durable', 'acct_durable');
    const d = await ml.describe('acct_durable');
    expect(BigInt(d.lsn)).toBeGreaterThan(afterCopy);
    // Received and applied, readable, but not in Iceberg: Postgres must keep it.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await confirmedFlush()).toBe(afterCopy);
    expect(BigInt(d.committedLsn)).toBeLessThanOrEqual(afterCopy);
    const flushed = await ml.call('POST', '/tables/acct_durable/flush');
    expect(flushed.status).toBe(200);
    const durable = BigInt(flushed.body.lsn);
    await eventually(async () => (await confirmedFlush()) === durable, 10_000, 'confirmation');
    const st = await sourceStatus(ml, 'acct_durable');
    expect(parsePgLsn(st.confirmedLsn)).toBe(durable);
    expect(st.lagBytes).toBeGreaterThanOrEqual(0);
    // Lag grows when the server's WAL moves on without this table (other tables' writes).
    await pgc.sql(`CREATE TABLE lag_other AS SELECT g FROM generate_series(1, 20000) g`);
    await eventually(async () => (await sourceStatus(ml, 'acct_durable')).serverLsn !== st.serverLsn, 10_000);
  });

  it('survives the writer stopping without a flush mid-stream, and a Postgres restart mid-stream', async () => {
    await accountsTable('acct_crash', 200);
    const dir = await tempDir('mlcdc-crash-');
    const env = { MOONLINK_MEMSLICE_MAX_ROWS: '400', MOONLINK_COMMIT_INTERVAL_MS: '700' };
    let ml = await moonlink(dir, env);
    await attach(ml, 'acct_crash', pgc, 'acct_crash');
    // (Creating the slot waits for transactions already running: start after it.)
    await eventually(async () => (await sourceStatus(ml, 'acct_crash')).state === 'streaming', 20_000);
    // The copy's flush makes it durable (what "resumed, not copied again" below relies on).
    await eventually(async () => (await ml.describe('acct_crash')).committedLsn > 0, 20_000, 'first commit');
    // An open big transaction is streaming when the writer goes away; it commits afterwards.
    const big = new pg.Client({ connectionString: pgc.url });
    big.on('error', () => undefined);
    await big.connect();
    await big.query('BEGIN');
    await big.query(`INSERT INTO acct_crash SELECT g, g, 'big', 0 FROM generate_series(100000, 109999) g`);
    const first = workload('acct_crash', { sessions: 3, txns: 60, seed: 2 });
    await eventually(async () => (await sourceStatus(ml, 'acct_crash')).openStreams >= 1, 20_000, 'a stream');
    await new Promise((r) => setTimeout(r, 300));
    await ml.close({ flush: false });
    await first;
    await big.query('COMMIT');
    ml = await moonlink(dir, env);
    await expectMirror(ml, 'acct_crash', 'acct_crash');
    expect((await sourceStatus(ml, 'acct_crash')).copiedRows).toBe(0); // resumed, not copied again

    // Postgres restarts while a big transaction is streaming (it is aborted by the shutdown).
    const doomed = new pg.Client({ connectionString: pgc.url });
    doomed.on('error', () => undefined);
    await doomed.connect();
    await doomed.query('BEGIN');
    await doomed.query(
      `INSERT INTO acct_crash SELECT g, g, 'doomed', 0 FROM generate_series(200000, 209999) g`,
    );
    await eventually(async () => (await sourceStatus(ml, 'acct_crash')).openStreams >= 1, 20_000, 'a stream');
    const reconnectsBefore = (await sourceStatus(ml, 'acct_crash')).reconnects;
    await pgc.restart();
    await doomed.end().catch(() => undefined);
    await workload('acct_crash', { sessions: 3, txns: 40, seed: 3 });
    await expectMirror(ml, 'acct_crash', 'acct_crash');
    const st = await sourceStatus(ml, 'acct_crash');
    expect(st.reconnects).toBeGreaterThan(reconnectsBefore);
    expect(st.state).toBe('streaming');
    expect((await ml.scan('acct_crash')).some((r) => r.note === 'doomed')).toBe(false);
  });

  it('a SIGKILLed writer process restarts and ends equal, nothing lost or doubled', async () => {
    await accountsTable('acct_kill', 100);
    const dir = await tempDir('mlcdc-kill-');
    const env = {
      MOONLINK_DATA_DIR: dir,
      MOONLINK_COMMIT_INTERVAL_MS: '300',
      MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
      MOONLINK_MAX_SCAN_LIMIT: '100000',
    };
    const call = async (url: string, method: string, p: string, body?: unknown) => {
      const r = await fetch(url + p, {
        method,
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, body: parseExactJson(await r.text()) as any };
    };
    let svc = await startServiceProcess(env);
    try {
      const created = await call(svc.url, 'POST', '/tables', {
        name: 'acct_kill',
        source: { postgres: { connection: pgc.url, table: 'acct_kill' } },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const counters = workload('acct_kill', { sessions: 3, txns: 120, seed: 4 });
      await new Promise((r) => setTimeout(r, 800));
      await svc.kill('SIGKILL');
      await counters;
      svc = await startServiceProcess(env);
      const sql = `SELECT ${COLS.map((c) => `${c}::text AS ${c}`).join(', ')} FROM acct_kill`;
      let pgRows: string[] = [];
      let mlRows: string[] = [];
      await eventually(
        async () => {
          pgRows = (await pgc.sql(sql)).map((r) => rowText(r, COLS)).sort();
          const r = await call(svc.url, 'GET', '/tables/acct_kill/rows?limit=100000');
          mlRows = (r.body.rows as Record<string, unknown>[]).map((x) => rowText(x, COLS)).sort();
          return JSON.stringify(pgRows) === JSON.stringify(mlRows);
        },
        30_000,
        'mirror after SIGKILL',
      ).catch(() => undefined);
      if (JSON.stringify(mlRows) !== JSON.stringify(pgRows)) console.error(svc.output());
      expect(mlRows).toEqual(pgRows);
      // Its slot and publication are named for the table: a rename is refused, nothing changes.
      const rename = await call(svc.url, 'POST', '/tables/acct_kill/rename', { name: 'acct_renamed' });
      expect(rename.status).toBe(409);
      expect(rename.body.error).toMatchObject({ code: 'rename_refused' });
      expect(rename.body.error.message).toMatch(/postgres source/);
      expect((await call(svc.url, 'GET', '/tables/acct_kill')).status).toBe(200);
      expect((await call(svc.url, 'GET', '/tables/acct_renamed')).status).toBe(404);
    } finally {
      await svc.kill('SIGKILL');
    }
  });

  it('redoes a copy that never reached Iceberg, and re-copies when the slot was lost', async () => {
    await accountsTable('acct_slots', 50);
    // A slot of this name exists already (as after a crash during the copy): dropped, copy redone.
    await pgc.sql(`SELECT pg_create_logical_replication_slot('acct_slots_slot', 'pgoutput')`);
    const ml = await moonlink(await tempDir('mlcdc-slots-'));
    await attach(ml, 'acct_slots', pgc, 'acct_slots', {
      source: { postgres: { connection: pgc.url, table: 'acct_slots', slot: 'acct_slots_slot' } },
    });
    await expectMirror(ml, 'acct_slots', 'acct_slots');
    expect((await sourceStatus(ml, 'acct_slots')).copiedRows).toBe(50);
    await workload('acct_slots', { sessions: 2, txns: 30, seed: 5 });
    await expectMirror(ml, 'acct_slots', 'acct_slots');
    // The slot disappears (dropped by hand): the table is emptied and copied again from a new one.
    const slot = (await ml.describe('acct_slots')).source.postgres.slot;
    await eventually(async () => {
      await pgc.sql(
        `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`,
        [slot],
      );
      await pgc.sql(`SELECT pg_drop_replication_slot($1)`, [slot]);
      return true;
    }, 10_000);
    await eventually(async () => {
      const st = await sourceStatus(ml, 'acct_slots');
      return st.reconnects >= 1 && st.state === 'streaming';
    }, 20_000);
    const count = (await pgc.sql<{ n: string }>(`SELECT count(*)::text AS n FROM acct_slots`))[0].n;
    expect((await sourceStatus(ml, 'acct_slots')).copiedRows).toBe(Number(count));
    await pgc.sql(`DELETE FROM acct_slots WHERE id % 2 = 0`);
    await pgc.sql(`INSERT INTO acct_slots VALUES (424242, 1, 'after the slot was lost', 0)`);
    await expectMirror(ml, 'acct_slots', 'acct_slots');
  });

  it('a column type change it cannot follow stops the source cleanly: error state, /health not ok, no reconnect loop, the slot kept', async () => {
    await accountsTable('acct_ddl', 20);
    const ml = await moonlink(await tempDir('mlcdc-ddl-'));
    const created = await attach(ml, 'acct_ddl', pgc, 'acct_ddl');
    await expectMirror(ml, 'acct_ddl', 'acct_ddl');
    await eventually(async () => (await sourceStatus(ml, 'acct_ddl')).state === 'streaming', 20_000);
    const before = (await ml.scan('acct_ddl')).length;
    const [{ confirmed_flush_lsn: slotBefore }] = await pgc.sql(
      `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`,
      [created.source.postgres.slot],
    );
    // text -> int: not a promotion the table can follow.
    await pgc.sql(`ALTER TABLE acct_ddl ALTER COLUMN note TYPE int USING length(note)`);
    await pgc.sql(`INSERT INTO acct_ddl VALUES (1000, 1.00, 7, 0)`);
    await eventually(async () => (await sourceStatus(ml, 'acct_ddl')).state === 'error', 20_000);
    const st = await sourceStatus(ml, 'acct_ddl');
    expect(st.error.code).toBe('source_schema_changed');
    expect(st.error.message).toMatch(
      /column "note" changed from string to int \(Postgres int4\), which Iceberg cannot promote/,
    );
    expect(st.wayOut).toMatch(/source\/resync/);
    const health = await ml.call('GET', '/health');
    expect(health.status).toBe(503);
    expect(health.body.problems).toContainEqual(
      expect.objectContaining({
        table: 'acct_ddl',
        state: 'source_error',
        error: expect.objectContaining({ code: 'source_schema_changed' }),
      }),
    );
    // No reconnect loop: the count stays put.
    const reconnects = st.reconnects;
    await new Promise((r) => setTimeout(r, 2500));
    expect((await sourceStatus(ml, 'acct_ddl')).reconnects).toBe(reconnects);
    // Reads go on with what was there; the slot did not move past the change.
    expect((await ml.scan('acct_ddl')).length).toBe(before);
    const [{ confirmed_flush_lsn: slotAfter }] = await pgc.sql(
      `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`,
      [created.source.postgres.slot],
    );
    const lsnOf = (t: unknown) => {
      const [hi, lo] = String(t).split('/');
      return BigInt(`0x${hi}`) * 2n ** 32n + BigInt(`0x${lo}`);
    };
    expect(lsnOf(slotAfter)).toBeLessThanOrEqual(lsnOf(slotBefore) + 1_000_000n);
    // The documented way out: a resync copies the table again as it is now, its columns too
    // ("note" becomes a new int column; the others keep their field ids), then streams on.
    const resync = await ml.call('POST', '/tables/acct_ddl/source/resync');
    expect(resync.status).toBe(202);
    await eventually(async () => (await sourceStatus(ml, 'acct_ddl')).state === 'streaming', 20_000);
    await pgc.sql(`INSERT INTO acct_ddl VALUES (1001, 2.00, 8, 0)`);
    await expectMirror(ml, 'acct_ddl', 'acct_ddl');
    const d = await ml.describe('acct_ddl');
    expect(d.columns.find((c: { name: string }) => c.name === 'note').type).toBe('int');
    expect((await ml.call('GET', '/health')).status).toBe(200);
    expect(
      (await ml.call('POST', '/tables/acct_ddl/schema', { changes: [{ action: 'drop-column', name: 'n' }] }))
        .status,
    ).toBe(409);
    expect((await ml.call('DELETE', '/tables/acct_ddl')).status).toBe(204);
  });

  it('follows ALTER TABLE: ADD, RENAME and DROP COLUMN, int4 -> int8 and numeric precision up, DDL and DML in one transaction, across a restart', async () => {
    await pgc.sql(
      `CREATE TABLE acct_alter (id bigint PRIMARY KEY, bal numeric(12,2) NOT NULL, note text, n int)`,
    );
    await pgc.sql(`INSERT INTO acct_alter SELECT g, g * 1.25, 'seed ' || g, g FROM generate_series(1, 50) g`);
    const dir = await tempDir('mlcdc-alter-');
    let ml = await moonlink(dir);
    await attach(ml, 'acct_alter', pgc, 'acct_alter');
    const mirror = async (cols: string[]) => {
      const { pg: p, moonlink: m } = await waitForMirror(ml, 'acct_alter', pgc, 'acct_alter', cols, 30_000);
      expect(m).toEqual(p);
    };
    await mirror(['id', 'bal', 'note', 'n']);
    await eventually(async () => (await sourceStatus(ml, 'acct_alter')).state === 'streaming', 20_000);

    await pgc.sql(`ALTER TABLE acct_alter ADD COLUMN extra text`);
    await pgc.sql(`INSERT INTO acct_alter VALUES (100, 1.00, 'new', 1, 'x100')`);
    await pgc.sql(`UPDATE acct_alter SET extra = 'e' || id WHERE id <= 10`);
    await mirror(['id', 'bal', 'note', 'n', 'extra']);

    await pgc.sql(`ALTER TABLE acct_alter RENAME COLUMN note TO memo`);
    await pgc.sql(`UPDATE acct_alter SET memo = 'renamed ' || id WHERE id % 5 = 0`);
    await mirror(['id', 'bal', 'memo', 'n', 'extra']);

    await pgc.sql(`ALTER TABLE acct_alter ALTER COLUMN n TYPE bigint, ALTER COLUMN bal TYPE numeric(16,2)`);
    await pgc.sql(`INSERT INTO acct_alter VALUES (101, 12345678901234.50, 'big', 9000000000, NULL)`);
    await mirror(['id', 'bal', 'memo', 'n', 'extra']);

    await pgc.sql(`ALTER TABLE acct_alter DROP COLUMN extra`);
    await pgc.sql(`DELETE FROM acct_alter WHERE id = 3`);
    await mirror(['id', 'bal', 'memo', 'n']);

    // DDL and DML in one transaction: rows changed before and after the ALTER.
    await pgc.sql(`BEGIN; UPDATE acct_alter SET memo = 'before' WHERE id = 4; ALTER TABLE acct_alter ADD COLUMN z int;
      UPDATE acct_alter SET z = id % 7; INSERT INTO acct_alter VALUES (102, 2.00, 'in txn', 2, 5); COMMIT`);
    await mirror(['id', 'bal', 'memo', 'n', 'z']);

    const d = await ml.describe('acct_alter');
    expect(d.schemaId).toBe(5);
    expect(d.columns.map((c: { name: string; type: string }) => `${c.name}:${c.type}`)).toEqual([
      'id:long',
      'bal:decimal(16,2)',
      'memo:string',
      'n:long',
      'z:int',
    ]);
    const st = await sourceStatus(ml, 'acct_alter');
    expect(st.state).toBe('streaming');
    expect(st.reconnects).toBe(0);

    // A restart without a flush: Postgres sends the changes again from the slot, with the table
    // as it was at each of them; the mirror ends the same.
    await ml.close({ flush: false });
    open.splice(open.indexOf(ml), 1);
    ml = await moonlink(dir);
    await pgc.sql(`UPDATE acct_alter SET z = 99 WHERE id = 1`);
    await mirror(['id', 'bal', 'memo', 'n', 'z']);
    expect((await ml.describe('acct_alter')).schemaId).toBe(5);
    // Committed: the Iceberg metadata keeps the history.
    expect((await ml.call('POST', '/tables/acct_alter/flush')).status).toBe(200);
    const loaded = (await ml.call('GET', '/iceberg/v1/namespaces/default/tables/acct_alter')).body;
    expect(loaded.metadata['current-schema-id']).toBe(5);
    expect(loaded.metadata.schemas.length).toBe(6);
  });

  it('a partitioned table mirrors its source; dropping its partition column stops the source until the partitioning changes and a resync', async () => {
    await accountsTable('acct_part', 40);
    const ml = await moonlink(await tempDir('mlcdc-part-'));
    await attach(ml, 'acct_part', pgc, 'acct_part', {
      partitionBy: [
        { column: 'id', transform: 'bucket[4]' },
        { column: 'n', transform: 'truncate[10]' },
      ],
      sortBy: [{ column: 'bal', direction: 'desc' }],
    });
    await expectMirror(ml, 'acct_part', 'acct_part');
    await pgc.sql(`UPDATE acct_part SET n = id * 3 WHERE id % 2 = 0`);
    await pgc.sql(`DELETE FROM acct_part WHERE id % 7 = 0`);
    await expectMirror(ml, 'acct_part', 'acct_part');
    expect((await ml.call('POST', '/tables/acct_part/flush')).status).toBe(200);
    const snap = (await ml.call('GET', '/tables/acct_part/snapshot')).body;
    const parts = snap.dataFiles
      .filter((f: { kind: string }) => f.kind === 'data')
      .map((f: { partition: unknown }) => f.partition);
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(Object.keys(p)).toEqual(['id_bucket', 'n_trunc']);
    // The column the table is partitioned by goes away in Postgres: the source stops, says why.
    await pgc.sql(`ALTER TABLE acct_part DROP COLUMN n`);
    await pgc.sql(`INSERT INTO acct_part VALUES (1000, 1.00, 'after drop')`);
    await eventually(async () => (await sourceStatus(ml, 'acct_part')).state === 'error', 20_000);
    expect((await sourceStatus(ml, 'acct_part')).error.message).toMatch(
      /partitioned by .*"n_trunc".*set-partitioning without it, then resync/,
    );
    // The way out: partition without it, then resync.
    const set = await ml.call('POST', '/tables/acct_part/schema', {
      changes: [{ action: 'set-partitioning', partitionBy: [{ column: 'id', transform: 'bucket[4]' }] }],
    });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect((await ml.call('POST', '/tables/acct_part/source/resync')).status).toBe(202);
    await eventually(async () => (await sourceStatus(ml, 'acct_part')).state === 'streaming', 30_000);
    const want = (await pgc.sql(`SELECT id FROM acct_part ORDER BY id`)).map((r) => Number(r.id));
    const ids = async () => (await ml.scan('acct_part')).map((r) => Number(r.id)).sort((a, b) => a - b);
    await eventually(async () => JSON.stringify(await ids()) === JSON.stringify(want), 30_000);
    expect(await ids()).toEqual(want);
    expect((await ml.describe('acct_part')).columns.map((c: { name: string }) => c.name)).not.toContain('n');
    expect((await ml.call('DELETE', '/tables/acct_part')).status).toBe(204);
  });

  it('takes the connection from the environment (env:NAME), so the catalog holds no password', async () => {
    await accountsTable('acct_env', 5);
    process.env.MOONLINK_TEST_PG = pgc.url;
    const ml = await moonlink(await tempDir('mlcdc-env-'));
    const r = await ml.call('POST', '/tables', {
      name: 'acct_env',
      source: { postgres: { connection: 'env:MOONLINK_TEST_PG', table: 'acct_env' } },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    await expectMirror(ml, 'acct_env', 'acct_env');
    expect((await ml.describe('acct_env')).source.postgres.credentials).toBe('environment');
    const catalog = await fs.readFile(path.join(ml.dir, 'catalog.json'), 'utf8');
    expect(catalog).toContain('env:MOONLINK_TEST_PG');
    expect(catalog).not.toContain(pgc.url);
    const bad = await ml.call('POST', '/tables', {
      name: 'acct_env2',
      source: { postgres: { connection: 'env:MOONLINK_NOT_SET', table: 'acct_env' } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/MOONLINK_NOT_SET, which is not set/);
  });

  it('dropping the table drops its replication slot and publication', async () => {
    await accountsTable('acct_drop', 3);
    const ml = await moonlink(await tempDir('mlcdc-drop-'));
    const created = await attach(ml, 'acct_drop', pgc, 'acct_drop');
    const { slot, publication } = created.source.postgres;
    // The test's connection has no password: flagged as such, never shown.
    expect(created.source.postgres.credentials).toBe('none');
    expect(JSON.stringify(created)).not.toContain(pgc.url);
    await expectMirror(ml, 'acct_drop', 'acct_drop');
    expect(await pgc.sql(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [slot])).toHaveLength(1);
    const r = await ml.call('DELETE', '/tables/acct_drop');
    expect(r.status).toBe(204);
    expect(await pgc.sql(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [slot])).toHaveLength(0);
    expect(await pgc.sql(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [publication])).toHaveLength(0);
  });
});
