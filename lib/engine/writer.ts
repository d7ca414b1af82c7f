/**
 * The writer service: owns every table's TableHandler, opens (recovers) tables, feeds each one
 * its durable log in LSN order, and lets the log drop what an Iceberg commit made durable.
 * Log records that cannot be decoded (a producer writing straight to the stream) go to a
 * dead-letter location with the reason, and the table moves on.
 */

import { mkdirSync } from 'node:fs';
import {
  type Catalog,
  ConflictError,
  TableDamagedError,
  TableNotReadyError,
  TableRenamingError,
} from '../catalog/catalog.ts';
import type { PropertyChange } from '../iceberg/iceberg-table.ts';
import { type DurableLog, LogDamagedError, type LogEntry, type LogSubscription } from '../log/durable-log.ts';
import type { Lsn } from '../lsn.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import { SchemaChangeRefusedError } from '../schema/errors.ts';
import type { EvolvedSchema, SchemaChange } from '../schema/schema-change.ts';
import type { TableDefinition, TableSchema } from '../schema/table-schema.ts';
import { deletePrefix } from '../store/delete-prefix.ts';
import { ephemeralRootOf, tableRootOf } from '../store/object-keys.ts';
import { DataFileMissingError, type ObjectStore } from '../store/object-store.ts';
import type { Operations } from '../txn/op-batch.ts';
import { decodeRequest } from '../txn/transaction.ts';
import { EventLoopDelay } from '../util/event-loop-delay.ts';
import type { Logger } from '../util/logger.ts';
import { BackpressureError } from '../util/memory-budget.ts';
import { Semaphore } from '../util/semaphore.ts';
import { decodeArrowRequest, isArrowStream } from './arrow-request.ts';
import type { CatalogMirror } from './catalog-mirror.ts';
import { type IdempotencyRecord, type IdempotentWrite, unwrapRecord } from './idempotency.ts';
import type { EngineOptions } from './options.ts';
import { changeOwnedLayout, type PartitioningResult, partitioningChangeOf } from './partition-evolution.ts';
import {
  changeOwnedSchema,
  deliverSchemaChange,
  evolvedDefinition,
  parseSchemaChanges,
  type SchemaChangeContext,
  type SchemaChangeResult,
  schemaChangeOf,
  schemaForNewFields,
} from './schema-evolution.ts';
import type { CommitInfo, PublishedSnapshot, TableHandler, TableStatus } from './table-handler.ts';
import { openTable } from './table-loader.ts';
import { renameOwnedTable } from './table-rename.ts';

export interface WriterDeps {
  store: ObjectStore;
  catalog: Catalog;
  log: DurableLog;
  pool: ParquetWorkerPool;
  options: EngineOptions;
  logger: Logger;
  /** Local folder for spilled index runs. */
  spillDir: string;
  /** Which tables this writer owns (several writer groups split the tables); all by default. */
  owns?: (table: string) => boolean;
  /** Outside catalogs told about every commit (AWS Glue on AWS). */
  mirrors?: CatalogMirror[];
  /**
   * How long a rename waits for appends other processes may still make under the old name
   * (Lambda functions cache table definitions for 5 s); 0 where only this process appends.
   */
  renameDrainMs?: number;
}

/** A source other than the durable log (e.g. Postgres replication) that feeds a table. */
export interface TableSource {
  stop(): Promise<void>;
  /** Called when the table is dropped (e.g. drop the replication slot). */
  drop?(): Promise<void>;
  /** Called after each Iceberg commit with the LSN now durable (e.g. confirm it to Postgres). */
  committed?(lsn: Lsn): void;
  /** Figures for `GET /tables/{name}` (e.g. replication lag). */
  status?(): Record<string, unknown>;
  /** Why the source stopped taking changes, while it is stopped on an error (`GET /health`). */
  problem?(): { code: string; message: string } | undefined;
  /** Copies the table again from the source (the way out of a change it could not follow). */
  resync?(): Promise<void>;
}

export type SourceFactory = (
  def: TableDefinition,
  handler: TableHandler,
  writer: Writer,
) => Promise<TableSource>;

/** How a table stands in this writer. */
export type TableState = 'open' | 'recovering' | 'damaged' | 'failed';

export interface TableProblem {
  table: string;
  state: Exclude<TableState, 'open'>;
  error: { code: string; message: string } & Record<string, unknown>;
}

export interface WriterHealth {
  ready: boolean;
  problems: (
    | TableProblem
    | { component: string; state: string; error: { code: string; message: string } }
    | { table: string; state: 'source_error'; error: { code: string; message: string } }
  )[];
}

/** The error a table problem reports (code and message, plus what names the damage). */
function problemError(e: unknown): TableProblem['error'] {
  if (e instanceof LogDamagedError) return { code: e.code, message: e.message, ...e.damage };
  if (e instanceof DataFileMissingError) return { code: e.code, message: e.message, object: e.key };
  const code = (e as { code?: unknown }).code;
  return {
    code: typeof code === 'string' && /^[a-z_]+$/.test(code) ? code : 'open_failed',
    message: (e as Error).message ?? String(e),
  };
}

interface Owned {
  handler: TableHandler;
  feed: LogSubscription | TableSource | undefined;
}

export class Writer {
  private readonly tables = new Map<string, Owned>();
  private readonly opening = new Map<string, Promise<TableHandler>>();
  private readonly sourceFactories = new Map<string, SourceFactory>();
  /** Tables another writer took over (a newer epoch): never reopened by this writer. */
  private readonly lost = new Map<string, Error>();
  /** Tables replaying their log after opening, and the LSN that ends their recovery. */
  private readonly recovering = new Map<string, { target: Lsn; handler: TableHandler }>();
  /** Tables that are damaged (open, refusing writes) or could not be opened, and why. */
  private readonly problems = new Map<string, TableProblem>();
  private closed = false;
  deadLettered = 0;
  /** Records dead-lettered since the writer started, by table. */
  readonly deadLetteredByTable = new Map<string, number>();
  /** The main thread's event-loop delay (every table's loop runs on it). */
  readonly eventLoop = new EventLoopDelay();
  /** The process's resident memory when the writer was made (runtime and code, no tables yet). */
  private readonly startRss = process.memoryUsage.rss();

  constructor(readonly deps: WriterDeps) {
    mkdirSync(deps.spillDir, { recursive: true });
    deps.log.pauseWhile?.(() => this.overBudget());
  }

  /** Registers how tables with a `source` of this kind (e.g. "postgres") are fed. */
  registerSource(kind: string, factory: SourceFactory): void {
    this.sourceFactories.set(kind, factory);
  }

  /** Opens every table in the catalog that this writer owns. */
  async start(): Promise<void> {
    await this.sync();
  }

  /**
   * Brings the owned tables in line with the catalog: opens tables created elsewhere (e.g. by a
   * Lambda function) and stops tables dropped elsewhere. The AWS writer runs this periodically.
   */
  async sync(): Promise<void> {
    const owns = this.deps.owns ?? (() => true);
    await this.deps.catalog.finishRenames?.();
    const all = await this.deps.catalog.listTables();
    const inCatalog = new Set(all.map((d) => d.name));
    const defs = all.filter((d) => owns(d.name) && !this.lost.has(d.name) && !this.renaming.has(d.name));
    const names = new Set(defs.map((d) => d.name));
    // A few at a time: each open reads metadata and the log (thousands at once exhaust file descriptors).
    const gate = new Semaphore(16);
    await Promise.all(
      defs
        .filter((d) => !this.tables.has(d.name))
        .map((d) =>
          gate
            .run(() => this.open(d.name))
            .catch((e) =>
              e instanceof TableNotReadyError
                ? this.deps.logger.debug('table still being created; opened on a later sync', {
                    table: d.name,
                  })
                : undefined,
            ),
        ),
    );
    for (const [name, owned] of [...this.tables]) {
      if (names.has(name) || this.renaming.has(name)) continue;
      this.tables.delete(name);
      await stopFeed(owned.feed);
      await owned.handler.close();
      if (inCatalog.has(name)) {
        for (const m of this.mirrors) m.released(name);
        this.deps.logger.info('table no longer owned by this writer; stopped', { table: name });
      } else {
        // Dropped without this writer (a function dropped it while the writer was unreachable).
        await Promise.all(this.mirrors.map((m) => m.dropped(name)));
        this.deps.logger.info('table no longer in the catalog; stopped', { table: name });
      }
    }
  }

  tableNames(): string[] {
    return [...this.tables.keys()];
  }

  /** The table's handler, opening (recovering) it first if needed. */
  open(name: string): Promise<TableHandler> {
    const lost = this.lost.get(name);
    if (lost) return Promise.reject(lost);
    const to = this.renaming.get(name);
    if (to !== undefined && !this.tables.has(name)) return Promise.reject(new TableRenamingError(name, to));
    const owned = this.tables.get(name);
    if (owned && !owned.handler.isFenced) return Promise.resolve(owned.handler);
    let p = this.opening.get(name);
    if (!p) {
      p = this.doOpen(name)
        .catch((e) => {
          if (
            !(e instanceof TableNotReadyError) &&
            !this.closed &&
            !/does not exist/.test((e as Error).message)
          ) {
            const state = e instanceof DataFileMissingError ? 'damaged' : 'failed';
            this.problems.set(name, { table: name, state, error: problemError(e) });
            this.deps.logger.error('could not open table', { table: name, state, error: e });
          }
          throw e;
        })
        .finally(() => this.opening.delete(name));
      this.opening.set(name, p);
    }
    return p;
  }

  /** How the table stands: open, recovering (replaying its log), damaged (open, refusing writes) or failed to open. */
  tableState(name: string): { state: TableState; error?: TableProblem['error'] } {
    const p = this.problems.get(name);
    if (p) return { state: p.state, error: p.error };
    return this.recoveryTarget(name) === undefined ? { state: 'open' } : { state: 'recovering' };
  }

  /**
   * While a reopened table replays its log: the LSN a published snapshot must reach (the log's
   * end when the table opened). Reads without a newer `minLsn` wait for it; undefined once recovered.
   */
  recoveryTarget(name: string): Lsn | undefined {
    const r = this.recovering.get(name);
    if (!r) return undefined;
    if (r.handler.publishedLsn >= r.target || r.handler !== this.tables.get(name)?.handler) {
      this.recovering.delete(name);
      return undefined;
    }
    return r.target;
  }

  /** Why writes to the table are refused now, if they are (a damaged table, or past the memory budget). */
  writeRefusal(name: string): Error | undefined {
    const to = this.renaming.get(name);
    if (to !== undefined) return new TableRenamingError(name, to);
    const p = this.problems.get(name);
    if (p?.state === 'damaged') return new TableDamagedError(name, p.error);
    if (this.overBudget()) {
      this.refusedWrites++;
      return new BackpressureError(this.usedBytes, this.deps.options.memoryBudgetBytes);
    }
    return undefined;
  }

  /** Writes refused for backpressure since the writer started. */
  refusedWrites = 0;

  /** Tables that failed to open or opened damaged (some may not be among tableNames). */
  problemTables(): string[] {
    return [...this.problems.keys()];
  }

  private usedBytes = 0;
  private usedAt = 0;
  /** A catch-up flush in flight (one at a time). */
  private relieving: Promise<unknown> | undefined;

  /** Memory held over all tables (recomputed at most every 20 ms). */
  memoryInUse(): number {
    const now = Date.now();
    if (now - this.usedAt >= 20) {
      // What the tables hold. The Parquet workers' own memory is not counted (their runtime
      // and WebAssembly memory are about fixed: jobs stream a row group at a time); it is
      // reported beside (memoryStatus), and a compaction also waits for resident memory.
      let bytes = 0;
      for (const o of this.tables.values()) bytes += o.handler.memoryBytes();
      this.usedBytes = bytes;
      this.usedAt = now;
    }
    return this.usedBytes;
  }

  /**
   * Whether the writer holds more than its memory budget. While it does, the table holding the
   * most is flushed (one at a time), so the writer catches up by itself.
   */
  overBudget(): boolean {
    const over = this.memoryInUse() > this.deps.options.memoryBudgetBytes;
    if (over && !this.relieving && !this.closed) {
      let biggest: TableHandler | undefined;
      let most = 0;
      for (const o of this.tables.values()) {
        const b = o.handler.memoryBytes();
        if (b > most && !o.handler.isFenced) [biggest, most] = [o.handler, b];
      }
      if (biggest) {
        this.deps.logger.info('memory budget reached: flushing the largest table', {
          table: biggest.name,
          usedBytes: this.usedBytes,
          budgetBytes: this.deps.options.memoryBudgetBytes,
        });
        this.relieving = biggest
          .flush()
          .catch((e) =>
            this.deps.logger.warn('flush for the memory budget failed', { table: biggest.name, error: e }),
          )
          .finally(() => {
            this.relieving = undefined;
            this.usedAt = 0;
          });
      }
    }
    return over;
  }

  /**
   * What a compaction may take: what the budget leaves by the writer's own count, and no more
   * than the process's resident memory leaves of it (its growth since start-up, which also holds
   * what no count sees: the allocator's slack, garbage awaiting collection, the threads) — but
   * always a quarter of the budget if the count leaves that, so compactions never wait for a
   * collection that only their own allocations would bring. Writes are admitted by the count
   * alone (it falls as soon as a flush lands).
   */
  compactionHeadroom(): number {
    const budget = this.deps.options.memoryBudgetBytes;
    const byResident = budget - (process.memoryUsage.rss() - this.startRss);
    return Math.min(budget - this.memoryInUse(), Math.max(byResident, budget / 4));
  }

  /**
   * The budget and what is held, for status; beside it the process's own figures (resident,
   * V8 heap, memory outside the heap) so a gap between the two shows.
   */
  memoryStatus(): {
    usedBytes: number;
    budgetBytes: number;
    workersBytes: number;
    process: { rssBytes: number; startRssBytes: number; heapUsedBytes: number; externalBytes: number };
  } {
    const m = process.memoryUsage();
    return {
      usedBytes: this.memoryInUse(),
      budgetBytes: this.deps.options.memoryBudgetBytes,
      workersBytes: this.deps.pool.memoryBytes(),
      process: {
        rssBytes: m.rss,
        startRssBytes: this.startRss,
        heapUsedBytes: m.heapUsed,
        externalBytes: m.external,
      },
    };
  }

  /** Ready: every owned table open and undamaged, and the log writable. */
  async health(): Promise<WriterHealth> {
    const problems: WriterHealth['problems'] = [...this.problems.values()];
    for (const [table, r] of [...this.recovering]) {
      const target = this.recoveryTarget(table);
      if (target !== undefined)
        problems.push({
          table,
          state: 'recovering',
          error: {
            code: 'recovering',
            message: `replaying the log: applied LSN ${r.handler.lsn} of ${target}`,
          },
        });
    }
    for (const [table, owned] of this.tables) {
      const problem = owned.feed && 'problem' in owned.feed ? owned.feed.problem?.() : undefined;
      if (problem) problems.push({ table, state: 'source_error', error: problem });
    }
    const log = (await this.deps.log.health?.()) ?? { writable: true };
    if (!log.writable)
      problems.push({
        component: 'log',
        state: 'unwritable',
        error: {
          code: log.error?.code ?? 'storage_error',
          message: log.error?.message ?? 'the log cannot be written',
        },
      });
    return { ready: problems.length === 0 && !this.closed, problems };
  }

  private async doOpen(name: string): Promise<TableHandler> {
    if (this.closed) throw new Error('writer is closed');
    const def = await this.deps.catalog.getTable(name);
    if (!def) throw new Error(`table "${name}" does not exist`);
    this.problems.delete(name);
    const handler = await openTable({
      def,
      store: this.deps.store,
      catalog: this.deps.catalog,
      pool: this.deps.pool,
      options: this.deps.options,
      logger: this.deps.logger,
      spillDir: this.deps.spillDir,
      onFenced: (e) => {
        for (const m of this.mirrors) m.released(name);
        this.lost.set(name, e);
        const owned = this.tables.get(name);
        if (owned?.handler === handler) {
          this.tables.delete(name);
          void stopFeed(owned.feed);
        }
      },
      memoryHeadroom: () => this.compactionHeadroom(),
      onCommitted: (lsn) => {
        this.mirror(handler);
        // A source confirms to its origin only what Iceberg now holds (e.g. Postgres' slot).
        const feed = this.tables.get(name)?.feed;
        if (feed && 'committed' in feed) feed.committed?.(lsn);
        if (!def.source) {
          this.deps.log
            .truncate(name, lsn)
            .catch((e) => this.deps.logger.warn('log truncation failed', { table: name, error: e }));
        }
      },
    });
    const owned: Owned = { handler, feed: undefined };
    this.tables.set(name, owned);
    // A commit the mirrors missed before a restart is caught up now.
    this.mirror(handler);
    if (def.source) {
      const kind = Object.keys(def.source)[0];
      const factory = this.sourceFactories.get(kind);
      if (!factory)
        throw new Error(`table "${name}" has a ${kind} source, but this writer has no ${kind} support`);
      owned.feed = await factory(def, handler, this);
    } else {
      // A log that numbers the table's records itself must not hand out LSNs Iceberg already
      // covers (its folder was lost, or the table was renamed and its log is new).
      await this.deps.log.startAfter?.(name, handler.lsn);
      // Recovery lasts until replay reaches the log's end as of now.
      const end = await this.deps.log.lastLsn(name);
      if (end > handler.lsn) this.recovering.set(name, { target: end, handler });
      owned.feed = await this.deps.log.subscribe(name, handler.lsn, (entry) =>
        this.deliver(def, handler, entry),
      );
      // A damaged log delivered its intact prefix; the table serves reads and refuses writes.
      const damage = await this.deps.log.damage?.(name);
      if (damage) {
        const e = new LogDamagedError(damage);
        this.problems.set(name, { table: name, state: 'damaged', error: problemError(e) });
        handler.releaseSnapshotHold();
        this.recovering.delete(name);
      }
    }
    handler.start();
    return handler;
  }

  private deliver(def: TableDefinition, handler: TableHandler, entry: LogEntry): void {
    if (isMarker(entry)) {
      const evolved = schemaChangeOf(entry);
      if (evolved) {
        void deliverSchemaChange(this.schemaContext(), def, handler, entry.lsn, evolved);
        return;
      }
      const commit = streamCommitOf(entry);
      if (commit) handler.streamCommit(commit, entry.lsn, undefined, { key: commit, hash: 'stream-commit' });
      else handler.advance(entry.lsn);
      return;
    }
    let ops: Operations;
    let idem: IdempotentWrite | undefined;
    let schema: TableSchema = handler.latestSchema;
    let body = entry.payload;
    try {
      const rec = unwrapRecord(entry.payload);
      body = rec.body;
      idem = rec.idem;
      // The schema the record was checked in (a change may have come between).
      if (rec.schemaId !== undefined) schema = handler.schemaById(rec.schemaId) ?? schema;
      ops = (entry.decoded as Operations | undefined) ?? decodeLogged(schema, body);
    } catch (e) {
      const evolved = this.newFieldsSchema(def, handler, body);
      if (!evolved) {
        this.deadLetter(def.name, entry, (e as Error).message);
        handler.advance(entry.lsn);
        return;
      }
      // A record with new fields (a table that adds columns): the change goes with it.
      void deliverSchemaChange(this.schemaContext(), def, handler, entry.lsn, evolved, true);
      schema = evolved.schema;
      try {
        ops = decodeLogged(schema, body);
      } catch (again) {
        this.deadLetter(def.name, entry, (again as Error).message);
        handler.advance(entry.lsn);
        return;
      }
    }
    handler.apply(entry.lsn, ops, undefined, idem, schema);
  }

  /** The schema a record's new fields need, for tables that add columns (else undefined). */
  private newFieldsSchema(
    def: TableDefinition,
    handler: TableHandler,
    body: Uint8Array,
  ): EvolvedSchema | undefined {
    if (def.schemaEvolution !== 'add-columns' || isArrowStream(body)) return undefined;
    try {
      return schemaForNewFields(
        def,
        handler.latestSchema,
        handler.latestLastColumnId,
        new TextDecoder().decode(body),
      );
    } catch {
      return undefined;
    }
  }

  private schemaContext(): SchemaChangeContext {
    return { catalog: this.deps.catalog, log: this.deps.log, logger: this.deps.logger };
  }

  private readonly schemaChanges = new Map<string, Promise<unknown>>();

  /**
   * Changes a table's schema (`POST /tables/{name}/schema`): checked against the newest schema,
   * logged, applied, stored in the catalog. One change at a time per table.
   */
  async changeSchema(name: string, body: unknown): Promise<SchemaChangeResult | PartitioningResult> {
    const layout = partitioningChangeOf(body);
    if (layout) {
      return this.serialized(name, async () => {
        const handler = await this.open(name);
        const def = await this.deps.catalog.getTable(name);
        if (!def) throw new Error(`table "${name}" does not exist`);
        const refusal = this.writeRefusal(name);
        if (refusal) throw refusal;
        return changeOwnedLayout(this.schemaContext(), def, handler, layout);
      });
    }
    const changes = parseSchemaChanges(body);
    const run = async (): Promise<SchemaChangeResult> => {
      const handler = await this.open(name);
      const def = await this.deps.catalog.getTable(name);
      if (!def) throw new Error(`table "${name}" does not exist`);
      const refusal = this.writeRefusal(name);
      if (refusal) throw refusal;
      return changeOwnedSchema(this.schemaContext(), def, handler, changes);
    };
    return this.serialized(name, run);
  }

  /**
   * Adds the columns a write's new fields need (tables created with `"schemaEvolution":
   * "add-columns"`), before the write is checked and logged: the add-column changes whose
   * column another write has not added meanwhile, as one change. Resolves with the definition
   * to check the write against; undefined when the table does not add columns.
   */
  async addColumns(name: string, changes: SchemaChange[]): Promise<TableDefinition | undefined> {
    const run = async (): Promise<TableDefinition | undefined> => {
      const handler = await this.open(name);
      const def = await this.deps.catalog.getTable(name);
      if (def?.schemaEvolution !== 'add-columns') return undefined;
      const have = new Set(handler.latestSchema.fields.map((f) => f.name));
      const missing = changes.filter((c) => c.action === 'add-column' && !have.has(c.name));
      if (missing.length > 0) await changeOwnedSchema(this.schemaContext(), def, handler, missing);
      return evolvedDefinition(def, {
        schema: handler.latestSchema,
        lastColumnId: handler.latestLastColumnId,
      });
    };
    return this.serialized(name, run);
  }

  /** Runs schema changes of one table one at a time. */
  private serialized<T>(name: string, run: () => Promise<T>): Promise<T> {
    const before = this.schemaChanges.get(name) ?? Promise.resolve();
    const mine = before.then(run, run);
    const tail = mine.catch(() => undefined);
    this.schemaChanges.set(name, tail);
    void tail.then(() => {
      if (this.schemaChanges.get(name) === tail) this.schemaChanges.delete(name);
    });
    return mine;
  }

  private deadLetter(table: string, entry: LogEntry, reason: string): void {
    this.deadLettered++;
    this.deadLetteredByTable.set(table, (this.deadLetteredByTable.get(table) ?? 0) + 1);
    const key = `deadletter/${table}/${entry.lsn.toString().padStart(20, '0')}.json`;
    const body = JSON.stringify({
      table,
      lsn: entry.lsn.toString(),
      reason,
      record: new TextDecoder().decode(entry.payload),
    });
    // The reason may quote row data: it goes to the dead-letter object, the log gets where it failed.
    this.deps.logger.warn('log record moved to dead-letter location', {
      table,
      lsn: entry.lsn,
      at: reason.split(':')[0].slice(0, 80),
      key,
    });
    this.deps.store
      .put(key, new TextEncoder().encode(body))
      .catch((e) => this.deps.logger.error('dead-letter write failed', { key, error: e }));
  }

  /** The open handler's figures of a table, if this writer has it open. */
  handlerStatus(name: string): TableStatus | undefined {
    return this.tables.get(name)?.handler.status();
  }

  /**
   * Copies a source-fed table again from its source (`POST /tables/{name}/source/resync`): the
   * way out of a source change the table could not follow. Throws for a table without a source.
   */
  async resyncSource(name: string): Promise<void> {
    await this.open(name);
    const feed = this.tables.get(name)?.feed;
    if (!feed || !('resync' in feed) || !feed.resync)
      throw new SchemaChangeRefusedError(`table "${name}" has no source to copy again`);
    await feed.resync();
  }

  /** Source figures (e.g. replication lag) of a table fed by a source. */
  sourceStatus(name: string): Record<string, unknown> | undefined {
    const feed = this.tables.get(name)?.feed;
    return feed && 'status' in feed ? feed.status?.() : undefined;
  }

  async snapshotAtLeast(name: string, minLsn: Lsn): Promise<PublishedSnapshot> {
    return (await this.open(name)).snapshotAtLeast(minLsn);
  }

  /** Commits everything acknowledged so far: waits for the log's newest LSN to be applied. */
  async flush(name: string): Promise<CommitInfo> {
    const handler = await this.open(name);
    const def = handler.def;
    const log = this.deps.log;
    const target = def.source ? undefined : log.barrier ? await log.barrier(name) : await log.lastLsn(name);
    return handler.flush(target);
  }

  private get mirrors(): CatalogMirror[] {
    return this.deps.mirrors ?? [];
  }

  /** Tells the mirrors where the table's metadata is now. */
  private mirror(handler: TableHandler): void {
    if (this.mirrors.length === 0) return;
    const t = handler.mirrored();
    for (const m of this.mirrors) m.committed(t);
  }

  /** `catalogs` of `GET /tables/{name}`: each mirror's sync state of the table. */
  catalogStatus(name: string): Record<string, unknown> | undefined {
    if (this.mirrors.length === 0) return undefined;
    return Object.fromEntries(this.mirrors.map((m) => [m.name, m.status(name) ?? { state: 'not_synced' }]));
  }

  /** Seconds each mirror is behind (metrics). */
  mirrorLagSeconds(): Record<string, number> {
    return Object.fromEntries(this.mirrors.map((m) => [m.name, m.lagSeconds()]));
  }

  /** What the write with this Idempotency-Key did, once the table applied through `afterLsn`. */
  async idempotencyRecord(name: string, key: string, afterLsn?: Lsn): Promise<IdempotencyRecord | undefined> {
    return (await this.open(name)).idempotencyRecord(key, afterLsn);
  }

  /** Sets and removes Iceberg table properties; resolves once committed. */
  async updateProperties(name: string, change: PropertyChange): Promise<CommitInfo> {
    return (await this.open(name)).updateProperties(change);
  }

  /** Tables being renamed here, and their new names. */
  private readonly renaming = new Map<string, string>();

  /**
   * Renames a table this writer owns (table-rename.ts); resolves with the renamed definition
   * once it is open under the new name (or left to the writer that owns the new name).
   */
  async rename(from: string, to: string): Promise<TableDefinition> {
    if (this.renaming.has(from)) throw new ConflictError(`table "${from}" is already being renamed`);
    const handler = await this.open(from);
    this.renaming.set(from, to);
    try {
      return await renameOwnedTable(
        {
          catalog: this.deps.catalog,
          log: this.deps.log,
          logger: this.deps.logger,
          mirrors: this.mirrors,
          drainMs: this.deps.renameDrainMs ?? 0,
          handler: async () => handler,
          release: async (name) => {
            const owned = this.tables.get(name);
            this.tables.delete(name);
            this.recovering.delete(name);
            if (!owned) return;
            await stopFeed(owned.feed);
            await owned.handler.close({ flush: true });
          },
          reopen: async (name) => {
            this.renaming.delete(from);
            if (name !== from) this.problems.delete(from);
            if ((this.deps.owns ?? (() => true))(name)) await this.open(name);
          },
        },
        from,
        to,
      );
    } finally {
      this.renaming.delete(from);
    }
  }

  /**
   * Stops a table's handler and feed, deletes its log, removes it from the catalog, and deletes
   * its data — unless `purge` is false (an Iceberg REST drop without `purgeRequested`): then the
   * Iceberg metadata and data files stay where they are, for engines that still refer to them.
   */
  async drop(name: string, options: { purge?: boolean } = {}): Promise<void> {
    await this.opening.get(name)?.catch(() => undefined);
    const place = (await this.deps.catalog.getTable(name)) ?? { name };
    const owned = this.tables.get(name);
    this.tables.delete(name);
    if (owned) {
      await stopFeed(owned.feed);
      if (owned.feed && 'drop' in owned.feed && owned.feed.drop) {
        await owned.feed
          .drop()
          .catch((e) => this.deps.logger.warn('dropping the source failed', { table: name, error: e }));
      }
      await owned.handler.close();
    }
    await this.deps.catalog.dropTable(name);
    await this.deps.log.dropTable(name);
    await Promise.all(this.mirrors.map((m) => m.dropped(name)));
    this.problems.delete(name);
    const removed =
      (options.purge === false ? 0 : await deletePrefix(this.deps.store, `${tableRootOf(place)}/`)) +
      (await deletePrefix(this.deps.store, `${ephemeralRootOf(place)}/`));
    this.deps.logger.info('table dropped', {
      table: name,
      objectsDeleted: removed,
      purge: options.purge !== false,
    });
  }

  /**
   * Stops every table. With `flush`, each table first applies everything its log has
   * acknowledged and commits it, so a restart has nothing to replay.
   */
  async close(options: { flush?: boolean } = {}): Promise<void> {
    this.closed = true;
    this.eventLoop.stop();
    await Promise.all([...this.opening.values()].map((p) => p.catch(() => undefined)));
    const owned = [...this.tables.entries()];
    this.tables.clear();
    await Promise.all(
      owned.map(async ([name, o]) => {
        if (options.flush && !o.handler.isFenced) {
          try {
            if (o.feed && !('drop' in o.feed))
              await o.handler.snapshotAtLeast(await this.deps.log.lastLsn(name));
          } catch (e) {
            this.deps.logger.warn('could not catch up before shutdown', { table: name, error: e });
          }
        }
        await o.handler.close({ flush: options.flush });
        await stopFeed(o.feed);
      }),
    );
    await Promise.all(this.mirrors.map((m) => m.close()));
  }
}

async function stopFeed(feed: LogSubscription | TableSource | undefined): Promise<void> {
  if (!feed) return;
  const r = feed.stop();
  if (r instanceof Promise) await r.catch(() => undefined);
}

const MARKER_PREFIX = new TextEncoder().encode('{"marker"');

/**
 * A marker that commits a transaction streamed to the table by this process (an import):
 * `{"marker":"stream-commit","xid":…}`. The transaction commits at the marker's LSN and is kept
 * as an idempotency record under its xid; replayed after a restart (the streamed rows gone with
 * the process) it only moves the LSN.
 */
export function streamCommitMarker(xid: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ marker: 'stream-commit', xid }));
}

function streamCommitOf(entry: LogEntry): string | undefined {
  try {
    const m = JSON.parse(new TextDecoder().decode(entry.payload)) as { marker?: unknown; xid?: unknown };
    return m.marker === 'stream-commit' && typeof m.xid === 'string' ? m.xid : undefined;
  } catch {
    return undefined;
  }
}

/** A marker record (see DurableLog.barrier): moves the table's LSN, changes nothing. */
function isMarker(entry: LogEntry): boolean {
  if (entry.decoded !== undefined || entry.payload.length < MARKER_PREFIX.length) return false;
  for (let i = 0; i < MARKER_PREFIX.length; i++) if (entry.payload[i] !== MARKER_PREFIX[i]) return false;
  return true;
}

/** A logged record's body decoded in `schema` (JSON or an Arrow stream). */
function decodeLogged(schema: TableSchema, body: Uint8Array): Operations {
  return isArrowStream(body)
    ? decodeArrowRequest(schema, body, Number.MAX_SAFE_INTEGER)
    : decodeRequest(schema, body);
}
