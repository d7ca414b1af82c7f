/**
 * A private PostgreSQL cluster for the CDC tests: `initdb` in a temp folder (as the `postgres`
 * OS user when the tests run as root, since initdb refuses root), logical replication enabled,
 * `logical_decoding_work_mem=64kB` so streaming of in-progress transactions kicks in on small
 * tests, listening on 127.0.0.1 on a free port with trust authentication.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, promises as fs, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { serviceConfigFromEnv } from '../../lib/config.ts';
import { type EmbeddedService, startEmbedded } from '../../lib/embedded/embedded-service.ts';
import { parseExactJson } from '../../lib/schema/exact-json.ts';
import { JsonLogger, silentLogger } from '../../lib/util/logger.ts';
import { freePort } from './service-process.ts';

const run = promisify(execFile);

export interface PgCluster {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  url: string;
  port: number;
  dataDir: string;
  /** Connection string to another database of the cluster. */
  urlFor(database: string): string;
  /** Runs SQL on a fresh connection. */
  sql<T extends pg.QueryResultRow = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Stops the server (fast shutdown by default); `start()` brings it back on the same port. */
  halt(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Stops the server and deletes the cluster. */
  stop(): Promise<void>;
  log(): Promise<string>;
}

function findBin(name: string): string {
  const candidates = [`/usr/local/bin/${name}`, `/usr/local/pgsql/bin/${name}`];
  try {
    for (const v of readdirSync('/usr/lib/postgresql').sort().reverse())
      candidates.push(`/usr/lib/postgresql/${v}/bin/${name}`);
  } catch {
    // not a Debian layout
  }
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir) candidates.push(path.join(dir, name));
  const found = candidates.find((c) => existsSync(c));
  if (!found) {
    throw new Error(
      `PostgreSQL's ${name} was not found (looked in /usr/local/bin, /usr/lib/postgresql/*/bin and PATH). ` +
        'The Postgres CDC tests need a PostgreSQL server (15 or newer): install it, e.g. ' +
        '`apt-get install postgresql`, or run `.ci/run`, which installs it.',
    );
  }
  return found;
}

const isRoot = process.getuid?.() === 0;

/** Runs a PostgreSQL binary, as the `postgres` user when we are root. */
async function pgRun(bin: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const [cmd, full] = isRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  try {
    const r = await run(cmd, full, { timeout: timeoutMs, cwd: '/' });
    return r.stdout + r.stderr;
  } catch (e) {
    const err = e as Error & { stdout?: string; stderr?: string };
    throw new Error(
      `${path.basename(bin)} ${args.join(' ')} failed: ${err.message}\n${err.stdout}\n${err.stderr}`,
    );
  }
}

export async function startPostgres(settings: Record<string, string> = {}): Promise<PgCluster> {
  const initdb = findBin('initdb');
  const pgCtl = findBin('pg_ctl');
  findBin('postgres');
  if (isRoot) {
    try {
      execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' });
    } catch {
      throw new Error(
        'the tests run as root and initdb refuses root, so an OS user "postgres" is needed (useradd postgres)',
      );
    }
  }
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'mlpg-'));
  const dataDir = path.join(base, 'data');
  const logFile = path.join(base, 'server.log');
  if (isRoot) {
    await fs.chmod(base, 0o755);
    execFileSync('chown', ['postgres:', base]);
  }
  await pgRun(initdb, [
    '-D',
    dataDir,
    '-U',
    'postgres',
    '-A',
    'trust',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  const port = await freePort();
  const conf: Record<string, string> = {
    listen_addresses: "'127.0.0.1'",
    port: String(port),
    unix_socket_directories: `'${base}'`,
    wal_level: 'logical',
    max_replication_slots: '20',
    max_wal_senders: '20',
    logical_decoding_work_mem: "'64kB'",
    fsync: 'off',
    full_page_writes: 'off',
    synchronous_commit: 'off',
    max_connections: '100',
    wal_sender_timeout: "'60s'",
    ...settings,
  };
  await fs.appendFile(
    path.join(dataDir, 'postgresql.conf'),
    `\n${Object.entries(conf)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n')}\n`,
  );
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const withLog = async (what: Promise<unknown>): Promise<void> => {
    try {
      await what;
    } catch (e) {
      const log = await fs.readFile(logFile, 'utf8').catch(() => '');
      throw new Error(
        `${(e as Error).message}\nserver log (tail):\n${log.split('\n').slice(-40).join('\n')}`,
      );
    }
  };
  const start = async (): Promise<void> => {
    await withLog(pgRun(pgCtl, ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start']));
  };
  const halt = async (mode: 'fast' | 'immediate' = 'fast'): Promise<void> => {
    await withLog(pgRun(pgCtl, ['-D', dataDir, '-m', mode, '-w', '-t', '60', 'stop']));
  };
  await start();
  let stopped = false;
  return {
    url,
    port,
    dataDir,
    urlFor: (db) => `postgres://postgres@127.0.0.1:${port}/${db}`,
    sql: async <T extends pg.QueryResultRow>(text: string, params?: unknown[]) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        return (await c.query<T>(text, params)).rows;
      } finally {
        await c.end();
      }
    },
    halt,
    start,
    restart: async () => {
      await halt('fast');
      await start();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await halt('immediate').catch(() => undefined);
      await fs.rm(base, { recursive: true, force: true });
    },
    log: () => fs.readFile(logFile, 'utf8').catch(() => ''),
  };
}

// ---- the embedded service against a cluster ---------------------------------------------------

export interface MoonlinkHandle {
  svc: EmbeddedService;
  dir: string;
  call(method: string, p: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** Every row of a table through the scan endpoint (all pages). */
  scan(table: string, minLsn?: bigint): Promise<Record<string, unknown>[]>;
  describe(table: string): Promise<Record<string, any>>;
  close(options?: { flush?: boolean }): Promise<void>;
}

/** Starts the embedded service (`npm start`'s code path) on a loopback port over `dir`. */
export async function startMoonlink(dir: string, env: Record<string, string> = {}): Promise<MoonlinkHandle> {
  const config = serviceConfigFromEnv({
    PORT: '0',
    MOONLINK_DATA_DIR: dir,
    MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
    MOONLINK_COMMIT_INTERVAL_MS: '500',
    MOONLINK_GC_GRACE_MS: '0',
    MOONLINK_MAX_SCAN_LIMIT: '100000',
    ...env,
  });
  const svc = await startEmbedded(
    config,
    process.env.PG_TEST_LOGS ? new JsonLogger({}, 'INFO') : silentLogger,
  );
  const call = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(svc.url + p, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (parseExactJson(text) as any) : undefined };
  };
  return {
    svc,
    dir,
    call,
    scan: async (table, minLsn) => {
      const rows: Record<string, unknown>[] = [];
      let cursor: string | undefined;
      for (;;) {
        const q = new URLSearchParams({ limit: '100000' });
        if (cursor) q.set('cursor', cursor);
        else if (minLsn !== undefined) q.set('minLsn', minLsn.toString());
        const r = await call('GET', `/tables/${table}/rows?${q}`);
        if (r.status !== 200) throw new Error(`scan ${table}: ${r.status} ${JSON.stringify(r.body)}`);
        rows.push(...r.body.rows);
        cursor = r.body.nextCursor;
        if (!cursor) return rows;
      }
    },
    describe: async (table) => {
      const r = await call('GET', `/tables/${table}`);
      if (r.status !== 200) throw new Error(`describe ${table}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    close: (options) => svc.close(options),
  };
}

/** Attaches a Postgres table (`POST /tables` with a source); returns the created table's body. */
export async function attach(
  ml: MoonlinkHandle,
  name: string,
  pgc: PgCluster,
  table: string,
  extra: Record<string, unknown> = {},
): Promise<any> {
  const r = await ml.call('POST', '/tables', {
    name,
    source: { postgres: { connection: pgc.url, table } },
    ...extra,
  });
  if (r.status !== 201) throw new Error(`attach ${table}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Polls `check` until it returns true (or throws its last error after `timeoutMs`). */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Canonical text of a row for comparisons: `col=value` pairs in key order, values as JSON text. */
export function rowText(row: Record<string, unknown>, columns: string[]): string {
  return columns
    .map((c) => {
      const v = row[c];
      return `${c}=${v === null || v === undefined ? 'NULL' : typeof v === 'bigint' ? v.toString() : String(v)}`;
    })
    .join('|');
}

/**
 * Waits until the Moonlink table's rows equal Postgres's (`SELECT cols::text … ORDER BY`);
 * returns both sides so a test can assert on them.
 */
export async function waitForMirror(
  ml: MoonlinkHandle,
  name: string,
  pgc: PgCluster,
  pgTable: string,
  columns: string[],
  timeoutMs = 30_000,
): Promise<{ pg: string[]; moonlink: string[] }> {
  const select = `SELECT ${columns.map((c) => `${c}::text AS ${c}`).join(', ')} FROM ${pgTable}`;
  let pgRows: string[] = [];
  let mlRows: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    pgRows = (await pgc.sql(select)).map((r) => rowText(r, columns)).sort();
    mlRows = (await ml.scan(name).catch(() => [])).map((r) => rowText(r, columns)).sort();
    if (pgRows.length === mlRows.length && pgRows.every((r, i) => r === mlRows[i])) break;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return { pg: pgRows, moonlink: mlRows };
}
