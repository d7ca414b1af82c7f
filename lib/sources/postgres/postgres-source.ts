/**
 * The Postgres CDC source: mirrors one Postgres table into a Moonlink table in real time.
 *
 * First start: a publication for the table, a logical replication slot (pgoutput) exporting a
 * snapshot, and a copy of the table read inside that snapshot (a cursor), fed to the handler
 * as one streamed transaction committed at the slot's consistent point, so a big table spills
 * to Parquet instead of memory. The copy's commit carries a checkpoint (`postgres:<slot>`); a
 * restart that finds the checkpoint in the table's last Iceberg commit resumes from the slot,
 * one that does not drops the slot and copies again (the copy is all or nothing).
 *
 * Then START_REPLICATION (protocol 2, streaming on): each transaction is applied at its commit
 * end LSN; in-progress transactions that Postgres streams go to the handler piece by piece
 * (held back only while a savepoint could still roll them back); truncates empty the table;
 * empty transactions and keepalives (when nothing is open) advance the LSN.
 *
 * Durability: the slot's confirmed flush LSN only ever moves to an LSN that an Iceberg commit
 * made durable (`committed()`, and the table's catalog pointer, read every second), never to
 * what was merely received; every status update, keepalive replies included, reports that LSN
 * as flushed and applied. (The "written" position carries what was received: Postgres never
 * moves a slot by it, and a shutting-down server waits for it to catch up.) After a crash
 * Postgres resends from the confirmed LSN and the handler skips what it already has.
 * Connection failures reconnect with exponential backoff.
 */

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type pg from 'pg';
import type { Catalog } from '../../catalog/catalog.ts';
import { checkLayoutColumns } from '../../engine/row-layout.ts';
import { deliverSchemaChange } from '../../engine/schema-evolution.ts';
import type { SourceFactory, TableSink, TableSource } from '../../engine/table-sink.ts';
import { type Lsn, lsnAfter, lsnBefore, maxLsn, ZERO_LSN } from '../../lsn.ts';
import { rowMapper } from '../../schema/evolve-values.ts';
import { describeChange, type EvolvedSchema, SchemaChangeError } from '../../schema/schema-change.ts';
import { flatTableName } from '../../schema/table-name.ts';
import type { TableDefinition, TableSchema } from '../../schema/table-schema.ts';
import type { Value } from '../../schema/values.ts';
import type { DecodedOp } from '../../txn/transaction.ts';
import type { Logger } from '../../util/logger.ts';
import { OpBuffer } from './op-buffer.ts';
import {
  ensureReplicaIdentityFull,
  type PgTableInfo,
  quoteIdent,
  quoteLiteral,
  RowDecoder,
  readPgTable,
} from './pg-schema.ts';
import {
  type IncomingColumn,
  matchRelation,
  type RelationMatch,
  resyncSchema,
  UnfollowableChangeError,
} from './pg-schema-change.ts';
import { formatPgLsn, parsePgLsn } from './pg-text.ts';
import {
  PgOutputDecoder,
  type PgOutputMessage,
  parseReplicationFrame,
  standbyStatusUpdate,
  type TupleText,
} from './pgoutput.ts';
import { connectPg, ReplicationClient } from './replication-client.ts';
import { type MappedType, mapType, PgTypeCatalog } from './type-mapping.ts';

export interface PostgresSourceOptions {
  /** First reconnect delay; doubles up to `retryMaxMs`. */
  retryInitialMs: number;
  retryMaxMs: number;
  /** Standby status updates at least this often (Postgres drops silent receivers after wal_sender_timeout). */
  statusIntervalMs: number;
  /** How often the server's WAL position is read for the lag figure. */
  lagPollMs: number;
  /** How often the table's durable LSN is read from the catalog pointer. */
  durablePollMs: number;
  /** Rows fetched per cursor round trip during the initial copy. */
  copyBatchRows: number;
  /** A transaction sent whole (not streamed) goes to the handler in pieces past this many operations. */
  bigTransactionOps: number;
}

export const DEFAULT_POSTGRES_SOURCE_OPTIONS: PostgresSourceOptions = {
  retryInitialMs: 500,
  retryMaxMs: 30_000,
  statusIntervalMs: 10_000,
  lagPollMs: 5_000,
  durablePollMs: 1_000,
  copyBatchRows: 5_000,
  bigTransactionOps: 10_000,
};

export interface PostgresSourceDeps {
  logger: Logger;
  catalog: Catalog;
  /** Local folder for operations held back during savepoints. */
  spillDir: string;
  options?: Partial<PostgresSourceOptions>;
  /** The writer is past its memory budget: stop reading the stream until it is not. */
  overBudget?: () => boolean;
}

/** Default names of the slot and publication of a table (lower case: slot names allow nothing else). */
export function defaultReplicationName(def: { name: string; tableUuid: string }): string {
  return `moonlink_${flatTableName(def.name).toLowerCase()}_${def.tableUuid.replace(/-/g, '').slice(0, 8)}`.slice(
    0,
    63,
  );
}

/** Postgres columns as the schema-change rules compare them. */
function asIncoming(columns: { name: string; mapped: MappedType }[]): IncomingColumn[] {
  return columns.map((c) => ({ name: c.name, type: c.mapped.type, pgName: c.mapped.pgName }));
}

/** Registers this with `Writer.registerSource('postgres', …)`. */
export function postgresSourceFactory(options: Partial<PostgresSourceOptions> = {}): SourceFactory {
  return async (def, sink, ctx) => {
    const source = new PostgresSource(def, sink, {
      logger: ctx.logger,
      catalog: ctx.catalog,
      spillDir: ctx.spillDir,
      options,
      overBudget: () => ctx.overBudget(),
    });
    source.start();
    return source;
  };
}

/** A transaction sent whole (Begin … Commit). */
interface WholeTxn {
  xid: number;
  finalLsn: Lsn;
  /** Already applied before a restart: its changes are not decoded. */
  skip: boolean;
  ops: DecodedOp[];
  /** Set once the transaction went to the handler in pieces (it grew big). */
  handlerXid: string | undefined;
  truncated: boolean;
}

/** A transaction Postgres streams while in progress. */
interface StreamedTxn {
  xid: number;
  handlerXid: string;
  segment: number;
  /** Operations held back since a subtransaction first changed the table. */
  held: OpBuffer | undefined;
  /** Position in `held` of each subtransaction's first change. */
  subFirst: Map<number, number>;
  truncated: boolean;
}

/** Checkpoint value while a re-copy is under way (the table was emptied, the copy not committed). */
const RECOPYING = 'recopying';

/** Marks a truncate inside held-back operations. */
const TRUNCATE_MARK = '\u0000truncate';

interface Relation {
  ours: boolean;
  decoder: RowDecoder | undefined;
  replicaIdentity: string;
}

type State = 'starting' | 'copying' | 'streaming' | 'reconnecting' | 'error' | 'stopped';

/**
 * The Postgres table changed in a way this table cannot follow (a column's type, a dropped or
 * renamed column the table needs): the source stops instead of reconnecting in a loop, with the
 * slot kept at the last committed position, so nothing after the change is lost.
 */
export class SourceSchemaChangeError extends Error {
  readonly code = 'source_schema_changed';
}

export class PostgresSource implements TableSource {
  private readonly cfg: { connection: string; table: string; publication: string; slot: string };
  private readonly opts: PostgresSourceOptions;
  private readonly log: Logger;
  private stopped = false;
  private running: Promise<void> | undefined;
  private state: State = 'starting';
  private lastError: string | undefined;
  private reconnects = 0;
  private sessionNo = 0;

  /** Highest LSN handed to the handler (a transaction at or below it is already there). */
  private posted: Lsn;
  /** Highest LSN known durable in Iceberg (what Postgres may forget). */
  private confirmed: Lsn;
  /** The slot's confirmed flush LSN when the session started: status updates never go below it. */
  private slotFloor = ZERO_LSN;
  private received = ZERO_LSN;
  private serverLsn: Lsn | undefined;
  private lastMessageAt: number | undefined;
  /** When this session last heard from the server (or started): a silent stream is replaced. */
  private heardAt = 0;
  private copiedRows = 0;
  private appliedTransactions = 0;
  private savepointRollbacks = 0;

  // ---- per session ----
  private repl: ReplicationClient | undefined;
  private ctl: pg.Client | undefined;
  private info: PgTableInfo | undefined;
  private types = new PgTypeCatalog();
  private readonly decoder = new PgOutputDecoder();
  private relations = new Map<number, Relation>();
  private txn: WholeTxn | undefined;
  private readonly streams = new Map<number, StreamedTxn>();
  private streamXid: number | undefined;
  private readonly queue: Buffer[] = [];
  private processing = false;
  private paused = false;
  private failSession: ((e: unknown) => void) | undefined;
  private opsSinceYield = 0;
  private commitRequested = false;
  /** Cuts a reconnect delay short (stop). */
  private wake: (() => void) | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private sessionTimers: NodeJS.Timeout[] = [];

  constructor(
    private readonly def: TableDefinition,
    private readonly handler: TableSink,
    private readonly deps: PostgresSourceDeps,
  ) {
    const pgDef = def.source?.postgres;
    if (!pgDef) throw new Error(`table "${def.name}" has no postgres source`);
    const dflt = defaultReplicationName(def);
    this.cfg = {
      connection: pgDef.connection,
      table: pgDef.table,
      publication: pgDef.publication ?? dflt,
      slot: pgDef.slot ?? dflt,
    };
    this.opts = { ...DEFAULT_POSTGRES_SOURCE_OPTIONS, ...deps.options };
    this.log = deps.logger.child({ table: def.name, source: 'postgres', slot: this.cfg.slot });
    this.posted = handler.lsn;
    this.confirmed = handler.lsn;
  }

  private get checkpointKey(): string {
    return `postgres:${this.cfg.slot}`;
  }

  start(): void {
    const durable = setInterval(() => void this.readDurable(), this.opts.durablePollMs);
    durable.unref();
    this.timers.push(durable);
    this.running = this.run();
  }

  /** Confirms the LSN the table's catalog pointer says Iceberg holds. */
  private async readDurable(): Promise<void> {
    try {
      const p = await this.deps.catalog.getPointer(this.def.name);
      if (p?.committedLsn) this.committed(p.committedLsn);
    } catch {
      // next time
    }
  }

  /**
   * Postgres asks for a reply when it wants to know how far we are, above all when it is
   * shutting down: a stopping walsender waits until the confirmed flush LSN reaches everything
   * it sent. An Iceberg commit now (instead of at the next interval) lets it stop promptly.
   */
  private commitSoon(): void {
    if (this.commitRequested || this.posted <= this.confirmed) return;
    this.commitRequested = true;
    this.handler
      .commit()
      .then(() => this.readDurable())
      .catch(() => undefined)
      .finally(() => {
        this.commitRequested = false;
      });
  }

  // =========================================================================================
  // TableSource

  committed(lsn: Lsn): void {
    if (lsn <= this.confirmed) return;
    this.confirmed = lsn;
    this.sendStatus(false);
  }

  status(): Record<string, unknown> {
    const lag =
      this.serverLsn !== undefined && this.serverLsn > this.posted ? this.serverLsn - this.posted : 0n;
    return {
      kind: 'postgres',
      table: this.info ? `${this.info.schema}.${this.info.name}` : this.cfg.table,
      slot: this.cfg.slot,
      publication: this.cfg.publication,
      state: this.state,
      appliedLsn: formatPgLsn(this.posted),
      confirmedLsn: formatPgLsn(this.confirmed),
      receivedLsn: formatPgLsn(this.received),
      serverLsn: this.serverLsn === undefined ? null : formatPgLsn(this.serverLsn),
      lagBytes: Number(lag),
      secondsSinceLastMessage:
        this.lastMessageAt === undefined ? null : Math.round((Date.now() - this.lastMessageAt) / 100) / 10,
      transactions: this.appliedTransactions,
      copiedRows: this.copiedRows,
      openStreams: this.streams.size,
      savepointRollbacks: this.savepointRollbacks,
      reconnects: this.reconnects,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.state === 'error'
        ? {
            error: { code: 'source_schema_changed', message: this.lastError ?? '' },
            wayOut:
              'POST /tables/{name}/source/resync copies the table again as it is now (its columns included); or drop the table and create it again with the same source',
          }
        : {}),
    };
  }

  /** Why the source stopped, while it is stopped on an error (for /health). */
  problem(): { code: string; message: string } | undefined {
    return this.state === 'error'
      ? { code: 'source_schema_changed', message: this.lastError ?? '' }
      : undefined;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.state = 'stopped';
    for (const t of this.timers) clearInterval(t);
    // The last commit (a flushing shutdown commits right before this) is confirmed before leaving.
    // (best effort: otherwise Postgres resends from the older position and the handler skips it)
    await this.readDurable();
    this.failSession?.(new Error('source stopped'));
    this.wake?.();
    await this.endSession();
    await this.running?.catch(() => undefined);
  }

  /** The schema a re-copy gives the table (the Postgres columns now), applied at `lsn`. */
  private rebuildSchema(lsn: Lsn, info: PgTableInfo): void {
    let evolved: EvolvedSchema | undefined;
    try {
      evolved = resyncSchema(
        this.handler.latestSchema,
        this.handler.latestLastColumnId,
        asIncoming(info.columns),
        this.def.formatVersion,
      );
    } catch (e) {
      if (e instanceof UnfollowableChangeError) throw new SourceSchemaChangeError(e.message);
      throw e;
    }
    if (!evolved) return;
    this.log.info("the re-copy takes the Postgres table's columns", { schemaId: evolved.schema.schemaId });
    this.applySchemaChange(lsn, evolved);
  }

  /**
   * Copies the Postgres table again (`POST /tables/{name}/source/resync`): the way out of a
   * change that could not be followed. The slot is dropped; the next session creates a new one,
   * gives the table the Postgres columns as they are now, empties it and copies the rows from
   * the new slot's snapshot, then streams from there. Nothing is lost: the copy holds every row.
   */
  async resync(): Promise<void> {
    if (this.stopped) throw new Error('the source is stopped');
    this.failSession?.(new Error('resync requested'));
    await this.endSession();
    const c = await connectPg(this.cfg.connection, 'moonlink-resync');
    try {
      await this.dropSlot(c);
    } finally {
      await c.end().catch(() => undefined);
    }
    this.lastError = undefined;
    if (this.state === 'error') {
      this.state = 'starting';
      this.running = this.run();
    } else this.wake?.();
    this.log.info('resync: the table is copied again');
  }

  /** Drops the replication slot and the publication (the table is being dropped). */
  async drop(): Promise<void> {
    await this.stop();
    const c = await connectPg(this.cfg.connection, 'moonlink-drop');
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await c.query(
            `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`,
            [this.cfg.slot],
          );
          await c.query(
            `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`,
            [this.cfg.slot],
          );
          break;
        } catch (e) {
          if (attempt >= 20) throw e;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      await c.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(this.cfg.publication)}`);
      this.log.info('replication slot and publication dropped');
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  // =========================================================================================
  // The session loop

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      const startedAt = Date.now();
      const before = this.lastMessageAt;
      try {
        await this.session();
      } catch (e) {
        if (this.stopped) break;
        this.lastError = (e as Error).message;
        if (e instanceof SourceSchemaChangeError) {
          // Reconnecting would meet the same change again: stop, keep the slot where it is.
          await this.endSession();
          this.state = 'error';
          this.log.error('Postgres schema change cannot be followed; the source stopped', { error: e });
          return;
        }
        this.log.warn('Postgres replication interrupted; reconnecting', { error: e });
      } finally {
        await this.endSession();
      }
      if (this.stopped) break;
      this.reconnects++;
      this.state = 'reconnecting';
      const progressed = this.lastMessageAt !== before || Date.now() - startedAt > 60_000;
      failures = progressed ? 1 : failures + 1;
      const delay = Math.min(this.opts.retryMaxMs, this.opts.retryInitialMs * 2 ** (failures - 1));
      await new Promise<void>((r) => {
        const t = setTimeout(r, delay * (0.75 + Math.random() * 0.5));
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = undefined;
    }
  }

  /** One connection's life: set up (and copy if needed), then stream until it fails. */
  private async session(): Promise<void> {
    this.sessionNo++;
    this.state = 'starting';
    const ctl = await connectPg(this.cfg.connection, 'moonlink');
    this.ctl = ctl;
    this.checkStopped();
    this.info = await readPgTable(ctl, this.cfg.table);
    this.types = new PgTypeCatalog();
    await this.ensurePublication(ctl, this.info);
    const repl = await ReplicationClient.connect(
      this.cfg.connection,
      `moonlink_${flatTableName(this.def.name)}`.slice(0, 63),
    );
    this.repl = repl;
    this.checkStopped();
    const slot = await ctl.query<{
      plugin: string;
      database: string;
      confirmed: string | null;
      active: boolean;
    }>(
      `SELECT plugin, database, confirmed_flush_lsn::text AS confirmed, active
         FROM pg_replication_slots WHERE slot_name = $1`,
      [this.cfg.slot],
    );
    const mark = this.handler.status().checkpoints[this.checkpointKey];
    const copied = mark !== undefined && mark !== RECOPYING;
    let exists = slot.rows.length > 0;
    if (exists) {
      const s = slot.rows[0];
      const db = (await ctl.query<{ db: string }>('SELECT current_database() AS db')).rows[0].db;
      if (s.plugin !== 'pgoutput' || s.database !== db) {
        throw new Error(
          `replication slot "${this.cfg.slot}" exists but is not a pgoutput slot of database "${db}"`,
        );
      }
      if (!copied) {
        // A copy that never reached Iceberg: start over with a fresh slot and snapshot.
        this.log.info('initial copy was not committed; dropping the slot to copy again');
        await this.dropSlot(ctl);
        exists = false;
      } else {
        this.slotFloor = s.confirmed ? parsePgLsn(s.confirmed) : ZERO_LSN;
      }
    }
    if (!exists) {
      const created = await repl.createSlot(this.cfg.slot);
      this.slotFloor = created.consistentPoint;
      if (copied) {
        // The slot vanished after the copy (dropped by hand, or lost): copy again over an emptied table.
        this.log.warn('replication slot was missing; copying the table again');
        if (lsnBefore(created.consistentPoint) <= this.posted)
          throw new Error('cannot re-copy: the new slot does not start after the table LSN');
        // The table takes the Postgres table's columns as they are now (a resync after a
        // change that could not be followed), then is emptied for the copy.
        this.rebuildSchema(lsnBefore(created.consistentPoint), this.info);
        // Until the new copy commits, the table is marked as not copied (a failure redoes it).
        this.handler.truncate(lsnBefore(created.consistentPoint), [this.checkpointKey, RECOPYING]);
        this.posted = lsnBefore(created.consistentPoint);
      }
      if (created.consistentPoint <= this.posted) {
        throw new Error(
          `the new slot starts at ${formatPgLsn(created.consistentPoint)}, not after the table's LSN ${formatPgLsn(this.posted)}`,
        );
      }
      await this.copy(this.info, created.snapshotName, created.consistentPoint);
      this.checkStopped();
    }
    // Lag figure: the server's WAL position.
    const poll = async (): Promise<void> => {
      try {
        const r = await ctl.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
        this.serverLsn = parsePgLsn(r.rows[0].lsn);
      } catch {
        // the replication stream reports the failure
      }
    };
    await poll();
    const lagTimer = setInterval(() => void poll(), this.opts.lagPollMs);
    lagTimer.unref();
    // Status updates ask for a reply: Postgres answers with a keepalive, so a connection that
    // went silent (a network partition without a reset) is noticed and replaced.
    const silentLimitMs = Math.max(3 * this.opts.statusIntervalMs, 30_000);
    const statusTimer = setInterval(() => {
      if (Date.now() - this.heardAt > silentLimitMs) {
        this.failSession?.(new Error(`no message from Postgres for ${Math.round(silentLimitMs / 1000)} s`));
        return;
      }
      this.sendStatus(true);
    }, this.opts.statusIntervalMs);
    statusTimer.unref();
    this.sessionTimers.push(lagTimer, statusTimer);

    this.decoder.reset();
    this.relations = new Map();
    // What this session's walsender has sent us (reported as "written"; see standbyStatusUpdate).
    this.received = ZERO_LSN;
    this.state = 'streaming';
    const failed = new Promise<never>((_, reject) => {
      this.failSession = reject;
    });
    failed.catch(() => undefined);
    this.checkStopped();
    const streamed = repl.startReplication(
      this.cfg.slot,
      formatPgLsn(this.posted),
      this.cfg.publication,
      (chunk) => this.onData(chunk),
    );
    streamed.catch(() => undefined);
    this.log.info('streaming changes', { from: formatPgLsn(this.posted) });
    this.heardAt = Date.now();
    this.sendStatus(false);
    await Promise.race([streamed, failed]);
    throw new Error('the replication stream ended');
  }

  private checkStopped(): void {
    if (this.stopped) throw new Error('source stopped');
  }

  private async endSession(): Promise<void> {
    this.failSession = undefined;
    for (const t of this.sessionTimers) clearInterval(t);
    this.sessionTimers = [];
    const repl = this.repl;
    const ctl = this.ctl;
    this.repl = undefined;
    this.ctl = undefined;
    await repl?.end();
    await ctl?.end().catch(() => undefined);
    this.queue.length = 0;
    this.paused = false;
    // Whatever was in flight is sent again, whole, by the next session.
    this.txn = undefined;
    for (const st of this.streams.values()) {
      this.handler.streamAbort(st.handlerXid);
      st.held?.dispose();
    }
    this.streams.clear();
    this.streamXid = undefined;
  }

  private async ensurePublication(ctl: pg.Client, info: PgTableInfo): Promise<void> {
    const r = await ctl.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [this.cfg.publication]);
    if (r.rows.length === 0) {
      const viaRoot = info.relkind === 'p' ? ' WITH (publish_via_partition_root = true)' : '';
      try {
        await ctl.query(
          `CREATE PUBLICATION ${quoteIdent(this.cfg.publication)} FOR TABLE ${info.quoted}${viaRoot}`,
        );
      } catch (e) {
        // Another writer may have created it meanwhile.
        if ((e as { code?: string }).code !== '42710') throw e;
      }
    }
    // The old row of every update and delete, with unchanged TOAST values, is then in the WAL.
    const changed = await ensureReplicaIdentityFull(ctl, info);
    if (changed.length > 0) this.log.warn('set REPLICA IDENTITY FULL', { tables: changed });
  }

  private async dropSlot(ctl: pg.Client): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await ctl.query(
          `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`,
          [this.cfg.slot],
        );
        await ctl.query(`SELECT pg_drop_replication_slot($1)`, [this.cfg.slot]);
        return;
      } catch (e) {
        if (attempt >= 20) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  // =========================================================================================
  // Initial copy

  private async copy(info: PgTableInfo, snapshotName: string, at: Lsn): Promise<void> {
    this.state = 'copying';
    this.copiedRows = 0;
    const xid = `pg-copy:${this.cfg.slot}:${this.sessionNo}`;
    const decoder = new RowDecoder(
      this.handler.latestSchema,
      info.columns.map((c) => ({ name: c.name, mapped: c.mapped })),
    );
    const c = await connectPg(this.cfg.connection, 'moonlink-copy');
    const started = Date.now();
    let done = false;
    try {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await c.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshotName)}`);
      const cols = info.columns.map((x) => quoteIdent(x.name)).join(', ');
      const only = info.relkind === 'r' ? 'ONLY ' : '';
      await c.query(`DECLARE moonlink_copy NO SCROLL CURSOR FOR SELECT ${cols} FROM ${only}${info.quoted}`);
      const textOnly = { getTypeParser: () => (v: string) => v };
      for (;;) {
        if (this.stopped) return;
        const r = await c.query({
          text: `FETCH ${this.opts.copyBatchRows} FROM moonlink_copy`,
          rowMode: 'array',
          types: textOnly,
        } as pg.QueryArrayConfig);
        for (const row of r.rows as (string | null)[][]) {
          this.handler.streamOp(xid, decoder.op('insert', decoder.decode(row)));
        }
        this.copiedRows += r.rows.length;
        // Let the table's loop take these in before fetching more (back-pressure).
        await yieldToLoop();
        if (r.rows.length < this.opts.copyBatchRows) break;
      }
      await c.query('COMMIT');
      this.handler.streamCommit(xid, at, [this.checkpointKey, formatPgLsn(at)]);
      this.posted = at;
      done = true;
      this.log.info('initial copy done', {
        rows: this.copiedRows,
        lsn: formatPgLsn(at),
        ms: Date.now() - started,
      });
      // Make the copy durable soon, so a restart does not copy again.
      this.handler.commit().catch(() => undefined);
    } finally {
      if (!done) this.handler.streamAbort(xid);
      await c.end().catch(() => undefined);
    }
  }

  // =========================================================================================
  // Streaming

  private onData(chunk: Buffer): void {
    // The chunk is a view into the protocol parser's buffer, which is reused: keep a copy.
    this.queue.push(Buffer.from(chunk));
    if (!this.paused && this.queue.length > 256) {
      this.paused = true;
      this.repl?.pause();
    }
    if (!this.processing) void this.drain();
  }

  private async drain(): Promise<void> {
    this.processing = true;
    try {
      while (this.queue.length > 0) {
        // Past the writer's memory budget: stop reading (Postgres keeps the WAL) until it flushed.
        if (this.deps.overBudget?.()) {
          if (!this.paused) {
            this.paused = true;
            this.repl?.pause();
          }
          while (this.deps.overBudget() && !this.stopped) await new Promise((r) => setTimeout(r, 50));
        }
        const chunk = this.queue.shift()!;
        const r = this.onFrame(chunk);
        if (r) await r;
        if (this.opsSinceYield >= 2000) {
          this.opsSinceYield = 0;
          await yieldToLoop();
        }
        if (this.paused && this.queue.length < 32) {
          this.paused = false;
          this.repl?.resume();
        }
      }
    } catch (e) {
      this.queue.length = 0;
      this.failSession?.(e);
    } finally {
      this.processing = false;
    }
  }

  private onFrame(chunk: Buffer): Promise<void> | undefined {
    const frame = parseReplicationFrame(chunk);
    if (!frame) return undefined;
    this.lastMessageAt = Date.now();
    this.heardAt = this.lastMessageAt;
    if (frame.kind === 'keepalive') {
      if (frame.walEnd > this.received) this.received = frame.walEnd;
      if (this.serverLsn === undefined || frame.walEnd > this.serverLsn) this.serverLsn = frame.walEnd;
      // Nothing open: everything before walEnd was sent, so the table is current up to it.
      if (!this.txn && this.streams.size === 0 && frame.walEnd > this.posted) {
        this.handler.advance(frame.walEnd);
        this.posted = frame.walEnd;
      }
      if (frame.replyRequested) {
        this.sendStatus(false);
        this.commitSoon();
      }
      return undefined;
    }
    if (frame.walStart > this.received) this.received = frame.walStart;
    return this.onMessage(this.decoder.decode(frame.data));
  }

  private onMessage(m: PgOutputMessage): Promise<void> | undefined {
    switch (m.tag) {
      case 'begin':
        this.txn = {
          xid: m.xid,
          finalLsn: m.finalLsn,
          skip: m.finalLsn < this.posted,
          ops: [],
          handlerXid: undefined,
          truncated: false,
        };
        return undefined;
      case 'commit':
        this.onCommit(m.endLsn);
        return undefined;
      case 'relation':
        return this.onRelation(m);
      case 'insert':
      case 'update':
      case 'delete': {
        const rel = this.relations.get(m.oid);
        if (!rel?.ours || !rel.decoder) return undefined;
        if (this.streamXid === undefined && this.txn?.skip) return undefined;
        const map = this.toLatest(rel.decoder.schema);
        for (const op of this.decodeChange(m, rel.decoder))
          this.emit(map ? { ...op, values: map(op.values) } : op, m.xid);
        return undefined;
      }
      case 'truncate': {
        if (!m.oids.some((o) => this.relations.get(o)?.ours)) return undefined;
        this.onTruncate(m.xid);
        return undefined;
      }
      case 'stream-start': {
        this.streamXid = m.xid;
        if (!this.streams.has(m.xid)) {
          this.streams.set(m.xid, {
            xid: m.xid,
            handlerXid: `pg:${this.sessionNo}:${m.xid}:0`,
            segment: 0,
            held: undefined,
            subFirst: new Map(),
            truncated: false,
          });
        }
        return undefined;
      }
      case 'stream-stop':
        this.streamXid = undefined;
        return undefined;
      case 'stream-commit':
        this.onStreamCommit(m.xid, m.endLsn);
        return undefined;
      case 'stream-abort':
        this.onStreamAbort(m.xid, m.subxid);
        return undefined;
      default:
        // origin, type, message: nothing to do
        return undefined;
    }
  }

  private async onRelation(m: Extract<PgOutputMessage, { tag: 'relation' }>): Promise<void> {
    const info = this.info!;
    const ours = m.oid === info.oid || (m.schema === info.schema && m.name === info.name);
    if (!ours) {
      this.relations.set(m.oid, { ours: false, decoder: undefined, replicaIdentity: m.replicaIdentity });
      return;
    }
    const missing = m.columns.map((c) => c.typeOid).filter((o) => !this.types.types.has(o));
    if (missing.length > 0) await this.types.load(this.ctl!, missing);
    const where = `Postgres table ${info.schema}.${info.name} changed`;
    let incoming: { name: string; mapped: MappedType }[];
    try {
      incoming = m.columns.map((c) => ({
        name: c.name,
        mapped: mapType(this.types, c.typeOid, c.typmod, `column "${c.name}"`),
      }));
    } catch (e) {
      throw new SourceSchemaChangeError(`${where}: ${(e as Error).message}`);
    }
    const schema = this.followRelation(where, incoming);
    let decoder: RowDecoder;
    try {
      decoder = new RowDecoder(schema, incoming);
    } catch (e) {
      throw new SourceSchemaChangeError(`${where}: ${(e as Error).message}`);
    }
    if (m.replicaIdentity !== 'f')
      this.log.warn(
        'Postgres table is not REPLICA IDENTITY FULL; unchanged TOAST values cannot be restored',
        {
          replicaIdentity: m.replicaIdentity,
        },
      );
    this.relations.set(m.oid, { ours: true, decoder, replicaIdentity: m.replicaIdentity });
  }

  /**
   * The schema a Relation message's rows are in: the table's newest, an older one (a replay of
   * changes made before a schema change), or a new one: the change is followed at this point of
   * the stream (pg-schema-change.ts). Throws {@link SourceSchemaChangeError} for a change that
   * cannot be followed.
   */
  private followRelation(where: string, incoming: { name: string; mapped: MappedType }[]): TableSchema {
    // Where in the stream this is: the open transaction's commit, or the streamed change's position.
    const at = this.streamXid === undefined && this.txn ? this.txn.finalLsn : this.received;
    let match: RelationMatch;
    try {
      match = matchRelation(
        this.handler.schemaHistory(),
        this.handler.latestLastColumnId,
        asIncoming(incoming),
        this.def.formatVersion,
        (next) => at < this.handler.schemaChangedAt(next.schemaId),
      );
    } catch (e) {
      if (e instanceof UnfollowableChangeError) throw new SourceSchemaChangeError(`${where}: ${e.message}`);
      throw e;
    }
    if (match.kind !== 'evolve') return match.schema;
    try {
      // A column the table is partitioned or sorted by cannot go (Iceberg's rule).
      checkLayoutColumns(this.handler.fileLayout, match.evolved.schema.fields);
    } catch (e) {
      if (e instanceof SchemaChangeError)
        throw new SourceSchemaChangeError(
          `${where}: ${e.message.replace(/: set-partitioning.*$/, '')}; set-partitioning without it, then resync`,
        );
      throw e;
    }
    const before = this.handler.latestSchema;
    const lsn = at > this.posted ? at : lsnAfter(this.posted);
    this.applySchemaChange(lsn, match.evolved);
    // Changes of the open transaction decoded before it are carried over to the new schema.
    const t = this.streamXid === undefined ? this.txn : undefined;
    if (t && t.ops.length > 0) {
      const map = rowMapper(before, match.evolved.schema);
      t.ops = t.ops.map((o) => ({ ...o, values: map(o.values) }));
    }
    this.log.info('following a Postgres schema change', {
      changes: match.changes.map(describeChange),
      schemaId: match.evolved.schema.schemaId,
    });
    return match.evolved.schema;
  }

  /** A schema change at `lsn`, ordered before the changes that follow it; the catalog follows. */
  private applySchemaChange(lsn: Lsn, evolved: EvolvedSchema): void {
    void deliverSchemaChange(
      { catalog: this.deps.catalog, logger: this.log },
      this.def,
      this.handler,
      lsn,
      evolved,
      true,
    );
  }

  /** Maps rows of a relation decoded in an older schema to the table's newest (a replay). */
  private toLatest(schema: TableSchema): ((values: Value[]) => Value[]) | undefined {
    const latest = this.handler.latestSchema;
    return schema.schemaId === latest.schemaId ? undefined : rowMapper(schema, latest);
  }

  /** Row operations for one change: an update that moves the key is a delete plus an insert. */
  private decodeChange(
    m: Extract<PgOutputMessage, { tag: 'insert' | 'update' | 'delete' }>,
    d: RowDecoder,
  ): DecodedOp[] {
    if (m.tag === 'insert') return [d.op('insert', d.decode(m.tuple))];
    if (m.tag === 'delete') {
      const old = this.decodeOld(d, m.oldKind, m.old);
      return [d.op('delete', old)];
    }
    const old = m.old ? this.decodeOld(d, m.oldKind!, m.old) : undefined;
    const values = d.decode(m.tuple, m.oldKind === 'O' ? old : undefined);
    const op = d.op('upsert', values);
    if (old && op.key !== undefined) {
      const oldKey = d.keyOf(old);
      if (oldKey !== undefined && oldKey !== op.key) return [d.op('delete', old), op];
    }
    return [op];
  }

  private decodeOld(d: RowDecoder, kind: 'K' | 'O', tuple: TupleText): Value[] {
    // A 'K' tuple has the replica identity's columns, the others are NULL.
    return d.decode(kind === 'K' ? tuple.map((t) => (t === undefined ? null : t)) : tuple, undefined);
  }

  /** Routes one operation: into the open whole transaction, or the streamed one it belongs to. */
  private emit(op: DecodedOp, xid: number | undefined): void {
    this.opsSinceYield++;
    if (this.streamXid !== undefined) {
      const st = this.streams.get(this.streamXid)!;
      if (xid !== undefined && xid !== st.xid && !st.subFirst.has(xid)) {
        st.held ??= new OpBuffer(this.deps.spillDir);
        st.subFirst.set(xid, st.held.length);
      }
      if (st.held) st.held.push(op);
      else this.handler.streamOp(st.handlerXid, op);
      return;
    }
    const t = this.txn;
    if (!t) throw new Error('pgoutput: a change outside a transaction');
    if (t.handlerXid) {
      this.handler.streamOp(t.handlerXid, op);
      return;
    }
    t.ops.push(op);
    if (t.ops.length >= this.opts.bigTransactionOps) {
      t.handlerXid = `pg:${this.sessionNo}:whole:${t.xid}:${t.finalLsn}`;
      for (const o of t.ops) this.handler.streamOp(t.handlerXid, o);
      t.ops = [];
    }
  }

  private onTruncate(xid: number | undefined): void {
    if (this.streamXid !== undefined) {
      const st = this.streams.get(this.streamXid)!;
      if (xid !== undefined && xid !== st.xid && !st.subFirst.has(xid)) {
        st.held ??= new OpBuffer(this.deps.spillDir);
        st.subFirst.set(xid, st.held.length);
      }
      if (st.held) st.held.push({ op: 'delete', values: [], key: TRUNCATE_MARK });
      else this.truncateStream(st);
      return;
    }
    const t = this.txn;
    if (!t || t.skip) return;
    t.ops = [];
    t.truncated = true;
    if (t.handlerXid) {
      this.handler.streamAbort(t.handlerXid);
      t.handlerXid = undefined;
    }
  }

  /** A truncate inside a streamed transaction: what it sent so far is void; a new segment starts. */
  private truncateStream(st: StreamedTxn): void {
    this.handler.streamAbort(st.handlerXid);
    st.segment++;
    st.handlerXid = `pg:${this.sessionNo}:${st.xid}:${st.segment}`;
    st.truncated = true;
  }

  private onCommit(end: Lsn): void {
    const t = this.txn;
    this.txn = undefined;
    if (!t) throw new Error('pgoutput: commit without begin');
    if (t.skip || end <= this.posted) {
      if (t.handlerXid) this.handler.streamAbort(t.handlerXid);
      return;
    }
    if (t.truncated) {
      // Emptied, then refilled by the same transaction: empty at end-1, refilled at end.
      if (t.ops.length === 0 && !t.handlerXid) this.handler.truncate(end);
      else this.handler.truncate(lsnBefore(end));
    }
    if (t.handlerXid) this.handler.streamCommit(t.handlerXid, end);
    else if (t.ops.length > 0) this.handler.apply(end, t.ops);
    else if (!t.truncated) this.handler.advance(end);
    this.posted = end;
    this.appliedTransactions++;
    this.lastError = undefined;
  }

  private onStreamCommit(xid: number, end: Lsn): void {
    const st = this.streams.get(xid);
    this.streams.delete(xid);
    if (!st) {
      if (end > this.posted) {
        this.handler.advance(end);
        this.posted = end;
      }
      return;
    }
    if (end <= this.posted) {
      // Already applied before a restart: discard what was streamed again.
      this.handler.streamAbort(st.handlerXid);
      st.held?.dispose();
      return;
    }
    if (st.held) {
      for (const batch of st.held.batches()) {
        for (const op of batch) {
          if (op.key === TRUNCATE_MARK) this.truncateStream(st);
          else this.handler.streamOp(st.handlerXid, op);
        }
      }
      st.held.dispose();
    }
    if (st.truncated) this.handler.truncate(lsnBefore(end));
    this.handler.streamCommit(st.handlerXid, end);
    this.posted = end;
    this.appliedTransactions++;
    this.lastError = undefined;
  }

  private onStreamAbort(xid: number, subxid: number): void {
    const st = this.streams.get(xid);
    if (!st) return;
    if (subxid === xid) {
      this.streams.delete(xid);
      this.handler.streamAbort(st.handlerXid);
      st.held?.dispose();
      return;
    }
    // A rolled-back savepoint: its changes (and everything after its first one) go away.
    this.savepointRollbacks++;
    const first = st.subFirst.get(subxid);
    if (first === undefined || !st.held) return;
    st.held.truncate(first);
    for (const [x, at] of st.subFirst) if (at >= first) st.subFirst.delete(x);
  }

  private sendStatus(replyRequested: boolean): void {
    if (!this.repl || this.state !== 'streaming') return;
    const lsn = maxLsn(this.confirmed, this.slotFloor);
    if (lsn === 0n) return;
    try {
      this.repl.send(standbyStatusUpdate(this.received, lsn, replyRequested));
    } catch {
      // the stream's failure surfaces on its own
    }
  }
}
