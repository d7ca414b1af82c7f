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
  NoSuchTableError,
  TableDamagedError,
  TableNotReadyError,
  TableRenamingError,
} from '../catalog/catalog.ts';
import type { PropertyChange } from '../iceberg/iceberg-table.ts';
import { type DurableLog, LogDamagedError } from '../log/durable-log.ts';
import type { Lsn } from '../lsn.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import { SchemaChangeRefusedError } from '../schema/errors.ts';
import type { SchemaChange } from '../schema/schema-change.ts';
import type { TableDefinition } from '../schema/table-schema.ts';
import { DataFileMissingError, type ObjectStore } from '../store/object-store.ts';
import type { Operations } from '../txn/op-batch.ts';
import { EventLoopDelay } from '../util/event-loop-delay.ts';
import type { Logger } from '../util/logger.ts';
import { BackpressureError } from '../util/memory-budget.ts';
import { Semaphore } from '../util/semaphore.ts';
import { type CatalogMirror, CatalogMirrors } from './catalog-mirror.ts';
import type { IdempotencyRecord } from './idempotency.ts';
import { LogDelivery } from './log-delivery.ts';
import { MemoryGovernor } from './memory-governor.ts';
import { TableSchemaChanges } from './table-schema-changes.ts';
import {
  type TableProblem,
  type TableStanding,
  TableStandings,
  type WriterHealth,
  workersStarting,
} from './writer-health.ts';

export type { TableProblem, TableStanding, WriterHealth } from './writer-health.ts';

import type { EngineOptions } from './options.ts';
import type { PartitioningResult } from './partition-evolution.ts';
import type { SchemaChangeContext, SchemaChangeResult } from './schema-evolution.ts';
import { removeDroppedTable } from './table-drop.ts';
import { attachFeed, stopFeed, type TableFeed } from './table-feed.ts';
import type { CommitInfo, PublishedSnapshot, TableHandler, TableStatus } from './table-handler.ts';
import { openTable } from './table-loader.ts';
import { renameOwnedTable } from './table-rename.ts';

export { streamCommitMarker } from './log-delivery.ts';

import type { SourceFactory } from './table-sink.ts';

export type { SourceFactory, TableSource } from './table-sink.ts';

export interface WriterDeps {
  store: ObjectStore;
  catalog: Catalog;
  /** The durable log; entries appended by this process carry their decoded operations. */
  log: DurableLog<Operations>;
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

interface Owned {
  handler: TableHandler;
  feed: TableFeed | undefined;
}

export class Writer {
  private readonly tables = new Map<string, Owned>();
  private readonly opening = new Map<string, Promise<TableHandler>>();
  private readonly sourceFactories = new Map<string, SourceFactory>();
  /** Tables another writer took over (a newer epoch): never reopened by this writer. */
  private readonly lost = new Map<string, Error>();
  private readonly standings = new TableStandings((name) => this.tables.get(name)?.handler);
  private closed = false;
  private readonly delivery: LogDelivery;
  private readonly schemaChanges: TableSchemaChanges;
  /** The main thread's event-loop delay (every table's loop runs on it). */
  readonly eventLoop = new EventLoopDelay();
  private readonly memory: MemoryGovernor;
  private readonly mirrors: CatalogMirrors;

  constructor(readonly deps: WriterDeps) {
    mkdirSync(deps.spillDir, { recursive: true });
    this.mirrors = new CatalogMirrors(deps.mirrors);
    this.schemaChanges = new TableSchemaChanges({
      context: this.schemaContext(),
      open: (name) => this.open(name),
      writeRefusal: (name) => this.writeRefusal(name),
    });
    this.delivery = new LogDelivery({
      store: deps.store,
      logger: deps.logger,
      schemaContext: () => this.schemaContext(),
    });
    this.memory = new MemoryGovernor({
      budgetBytes: deps.options.memoryBudgetBytes,
      tables: () => [...this.tables.values()].map((o) => o.handler),
      workersBytes: () => deps.pool.memoryBytes(),
      closed: () => this.closed,
      logger: deps.logger,
    });
    deps.log.pauseWhile?.(() => this.overBudget());
  }

  /** Log records dead-lettered since the writer started (in all, and by table). */
  get deadLettered(): number {
    return this.delivery.deadLettered;
  }

  get deadLetteredByTable(): Map<string, number> {
    return this.delivery.deadLetteredByTable;
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
        this.mirrors.released(name);
        this.deps.logger.info('table no longer owned by this writer; stopped', { table: name });
      } else {
        // Dropped without this writer (a function dropped it while the writer was unreachable).
        await this.mirrors.dropped(name);
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
          if (!(e instanceof TableNotReadyError) && !this.closed && !(e instanceof NoSuchTableError)) {
            const state = e instanceof DataFileMissingError ? 'damaged' : 'failed';
            this.standings.setProblem(name, state, e);
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
  tableState(name: string): { state: TableStanding; error?: TableProblem['error'] } {
    return this.standings.state(name);
  }

  /**
   * While a reopened table replays its log: the LSN a published snapshot must reach (the log's
   * end when the table opened). Reads without a newer `minLsn` wait for it; undefined once recovered.
   */
  recoveryTarget(name: string): Lsn | undefined {
    return this.standings.recoveryTarget(name);
  }

  /** Why writes to the table are refused now, if they are (a damaged table, or past the memory budget). */
  writeRefusal(name: string): Error | undefined {
    const to = this.renaming.get(name);
    if (to !== undefined) return new TableRenamingError(name, to);
    const p = this.standings.problem(name);
    if (p?.state === 'damaged') return new TableDamagedError(name, p.error);
    if (this.overBudget()) {
      this.refusedWrites++;
      return new BackpressureError(this.memory.lastCount, this.deps.options.memoryBudgetBytes);
    }
    return undefined;
  }

  /** Writes refused for backpressure since the writer started. */
  refusedWrites = 0;

  /** Tables that failed to open or opened damaged (some may not be among tableNames). */
  problemTables(): string[] {
    return this.standings.problemTables();
  }

  /** Past the memory budget (the largest table is being flushed meanwhile). */
  overBudget(): boolean {
    return this.memory.overBudget();
  }

  memoryStatus(): ReturnType<MemoryGovernor['memoryStatus']> {
    return this.memory.memoryStatus();
  }

  /** Ready: every owned table open and undamaged, the log writable and the workers' code loaded. */
  async health(): Promise<WriterHealth> {
    const problems = this.standings.healthProblems();
    for (const [table, owned] of this.tables) {
      const problem = owned.feed && 'problem' in owned.feed ? owned.feed.problem?.() : undefined;
      if (problem) problems.push({ table, state: 'source_error', error: problem });
    }
    const workers = workersStarting(this.deps.pool);
    if (workers) problems.push(workers);
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
    if (!def) throw new NoSuchTableError(name);
    this.standings.clearProblem(name);
    const handler = await openTable({
      def,
      store: this.deps.store,
      catalog: this.deps.catalog,
      pool: this.deps.pool,
      options: this.deps.options,
      logger: this.deps.logger,
      spillDir: this.deps.spillDir,
      onFenced: (e) => {
        this.mirrors.released(name);
        this.lost.set(name, e);
        const owned = this.tables.get(name);
        if (owned?.handler === handler) {
          this.tables.delete(name);
          void stopFeed(owned.feed);
        }
      },
      memoryHeadroom: () => this.memory.compactionHeadroom(),
      onCommitted: (lsn) => {
        this.mirrors.committed(() => handler.mirrored());
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
    this.mirrors.committed(() => handler.mirrored());
    const attached = await attachFeed(
      {
        log: this.deps.log,
        delivery: this.delivery,
        sourceFactories: this.sourceFactories,
        sourceContext: {
          logger: this.deps.logger,
          catalog: this.deps.catalog,
          spillDir: this.deps.spillDir,
          overBudget: () => this.overBudget(),
        },
      },
      def,
      handler,
      // Recovery lasts until replay reaches the log's end as of the open.
      (target) => this.standings.startRecovery(name, target, handler),
    );
    owned.feed = attached.feed;
    // A damaged log delivered its intact prefix; the table serves reads and refuses writes.
    if (attached.damage) {
      const e = new LogDamagedError(attached.damage);
      this.standings.setProblem(name, 'damaged', e);
      handler.releaseSnapshotHold();
      this.standings.endRecovery(name);
    }
    handler.start();
    return handler;
  }

  private schemaContext(): SchemaChangeContext {
    return { catalog: this.deps.catalog, log: this.deps.log, logger: this.deps.logger };
  }

  /**
   * Changes a table's schema or partitioning (`POST /tables/{name}/schema`); one change at a
   * time per table (see TableSchemaChanges).
   */
  changeSchema(name: string, body: unknown): Promise<SchemaChangeResult | PartitioningResult> {
    return this.schemaChanges.change(name, body);
  }

  /** Adds the columns a write's new fields need (tables that add columns); see TableSchemaChanges. */
  addColumns(name: string, changes: SchemaChange[]): Promise<TableDefinition | undefined> {
    return this.schemaChanges.addColumns(name, changes);
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
  async commit(name: string): Promise<CommitInfo> {
    const handler = await this.open(name);
    const def = handler.def;
    const log = this.deps.log;
    const target = def.source ? undefined : log.barrier ? await log.barrier(name) : await log.lastLsn(name);
    return handler.commit(target);
  }

  /** `catalogs` of `GET /tables/{name}`: each mirror's sync state of the table. */
  catalogStatus(name: string): Record<string, unknown> | undefined {
    return this.mirrors.status(name);
  }

  /** Seconds each mirror is behind (metrics). */
  mirrorLagSeconds(): Record<string, number> {
    return this.mirrors.lagSeconds();
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
          mirrors: this.mirrors.list,
          drainMs: this.deps.renameDrainMs ?? 0,
          handler: async () => handler,
          release: async (name) => {
            const owned = this.tables.get(name);
            this.tables.delete(name);
            this.standings.endRecovery(name);
            if (!owned) return;
            await stopFeed(owned.feed);
            await owned.handler.close({ flush: true });
          },
          reopen: async (name) => {
            this.renaming.delete(from);
            if (name !== from) this.standings.clearProblem(from);
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
    this.standings.clearProblem(name);
    await removeDroppedTable({ ...this.deps, mirrors: this.mirrors }, name, place, options.purge !== false);
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
    await this.mirrors.close();
  }
}
