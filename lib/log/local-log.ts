/**
 * The embedded durable log: per table, append-only segment files on local disk (framing in
 * log-segment.ts). Appends are group-committed: one synchronous write (O_DSYNC, log-fs.ts) for
 * every append waiting at that moment, acknowledged only after it completed in full.
 *
 * What a disk can do to it, and what happens:
 * - A short write is continued until every byte is written; a write or sync that fails
 *   rejects every append of its group (none acknowledged), and the segment is cut back to its
 *   last complete record — never extended. A full disk is a {@link StorageFullError}; the
 *   next write tries again, so writing resumes by itself once space returns.
 * - On open, a torn last record (a crash mid-write) is cut off with a WARN. Any other bad
 *   record leaves the table's log `damaged`: its intact prefix is delivered, appends are
 *   refused, nothing is truncated or renamed, and `repairLog` (log-repair.ts) fixes it
 *   deliberately.
 * - At most `maxOpenFiles` segment files are open at once across tables; idle ones are closed
 *   and reopened on demand, so thousands of tables fit under `ulimit -n 1024`.
 */
import path from 'node:path';
import type { Lsn } from '../lsn.ts';
import { TABLE_NAME_PATTERN } from '../schema/table-name.ts';
import { classifyIoError } from '../util/io-errors.ts';
import type { Logger } from '../util/logger.ts';
import { Semaphore } from '../util/semaphore.ts';
import type { DurableLog, LogDamage, LogEntry, LogHealth, LogSubscription } from './durable-log.ts';
import { type LogFs, nodeLogFs, writeFully } from './log-fs.ts';
import { type Segment, TableLog, type TableLogOwner } from './table-log.ts';

export { readSkips, SKIPS_FILE } from './table-log.ts';

export const DEFAULT_SEGMENT_MAX_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_OPEN_FILES = 256;

export interface LocalLogOptions {
  fs?: LogFs;
  logger?: Logger;
  /** Segment files open at once, across tables (default 256). */
  maxOpenFiles?: number;
  segmentMaxBytes?: number;
}

export class LocalLog<D = unknown> implements DurableLog<D>, TableLogOwner<D> {
  readonly description: string;
  readonly fs: LogFs;
  readonly logger: Logger | undefined;
  readonly segmentMaxBytes: number;
  private readonly maxOpenFiles: number;
  private readonly tables = new Map<string, Promise<TableLog<D>>>();
  private readonly openFiles = new Set<TableLog<D>>();
  private readonly opening = new Semaphore(32);
  private readonly slotWaiters: (() => void)[] = [];
  private claiming = 0;
  private clock = 0;
  private lastError: LogHealth['error'];
  /** The largest write that failed since the last success: what the health probe tries. */
  private failedBytes = 0;

  constructor(
    readonly dir: string,
    options: LocalLogOptions = {},
  ) {
    this.description = `local:${path.resolve(dir)}`;
    this.fs = options.fs ?? nodeLogFs;
    this.logger = options.logger;
    this.segmentMaxBytes = options.segmentMaxBytes ?? DEFAULT_SEGMENT_MAX_BYTES;
    this.maxOpenFiles = Math.max(1, options.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES);
  }

  tick(): number {
    return ++this.clock;
  }

  /**
   * Waits until `t` may open a file without passing the limit, closing idle tables' files
   * first. A slot is held from here until {@link slotTaken}.
   */
  async fileSlot(t: TableLog<D>): Promise<void> {
    while (this.openFiles.size + this.claiming >= this.maxOpenFiles) {
      const idle = this.leastRecentlyUsedIdle(t);
      if (idle) {
        await idle.exclusive(async () => {
          if (idle.idle) await idle.closeHandle();
        });
        continue;
      }
      await new Promise<void>((r) => this.slotWaiters.push(r));
    }
    this.claiming++;
  }

  slotTaken(): void {
    this.claiming--;
  }

  private leastRecentlyUsedIdle(except?: TableLog<D>): TableLog<D> | undefined {
    let best: TableLog<D> | undefined;
    for (const t of this.openFiles)
      if (t !== except && t.idle && (!best || t.lastUsed < best.lastUsed)) best = t;
    return best;
  }

  fileOpened(t: TableLog<D>): void {
    this.openFiles.add(t);
  }

  fileClosed(t: TableLog<D>): void {
    this.openFiles.delete(t);
    this.slotWaiters.shift()?.();
  }

  /**
   * A table is done writing: a table waiting for a slot may now close its file; without
   * waiters, idle files are closed while a segment roll (which opens its next file without
   * waiting) left more than the limit open.
   */
  release(): void {
    const waiter = this.slotWaiters.shift();
    if (waiter) return waiter();
    if (this.openFiles.size + this.claiming <= this.maxOpenFiles) return;
    const idle = this.leastRecentlyUsedIdle();
    if (idle)
      void idle.exclusive(async () => {
        if (idle.idle) await idle.closeHandle();
      });
  }

  writeFailed(table: string, e: Error, bytes: number): void {
    const code = (e as { code?: string }).code ?? 'storage_error';
    this.lastError = { code, message: e.message, table, at: new Date().toISOString() };
    this.failedBytes = Math.max(this.failedBytes, bytes);
    this.logger?.error('log: write failed; nothing of it was acknowledged', {
      table,
      code,
      error: e.message,
    });
  }

  writeSucceeded(): void {
    this.lastError = undefined;
    this.failedBytes = 0;
  }

  private table(name: string): Promise<TableLog<D>> {
    if (!TABLE_NAME_PATTERN.test(name)) throw new Error(`invalid table name ${JSON.stringify(name)}`);
    let t = this.tables.get(name);
    if (!t) {
      const log = new TableLog<D>(path.join(this.dir, name), name, this);
      t = this.opening
        .run(() => log.open())
        .then(
          () => log,
          (e) => {
            throw classifyIoError(e, log.dir);
          },
        );
      this.tables.set(name, t);
      t.catch(() => this.tables.delete(name));
    }
    return t;
  }

  async append(table: string, payload: Uint8Array, decoded?: D): Promise<Lsn> {
    const sealed = this.sealed.get(table);
    if (sealed) throw sealed;
    const t = await this.table(table);
    const late = this.sealed.get(table);
    if (late) throw late;
    return t.append(payload, decoded);
  }

  /** Tables whose appends are refused, and why (a rename under way). */
  private readonly sealed = new Map<string, Error>();

  seal(table: string, reason: Error | undefined): void {
    if (reason) this.sealed.set(table, reason);
    else this.sealed.delete(table);
  }

  async subscribe(
    table: string,
    afterLsn: Lsn,
    onEntry: (entry: LogEntry<D>) => void,
  ): Promise<LogSubscription> {
    const t = await this.table(table);
    // Everything ≤ the durable LSN now is on disk; later entries arrive live. Buffer live ones
    // until the stored ones have been delivered, so order holds.
    const through = t.durableLsn;
    const buffered: LogEntry<D>[] = [];
    let replaying = true;
    let stopped = false;
    const live = (e: LogEntry<D>): void => {
      if (stopped || e.lsn <= afterLsn) return;
      if (replaying) buffered.push(e);
      else onEntry(e);
    };
    t.subscribers.add(live);
    const stored = await t.readStored(afterLsn, through);
    for (const e of stored) if (!stopped) onEntry(e);
    for (const e of buffered) if (!stopped && e.lsn > through) onEntry(e);
    replaying = false;
    return {
      stop: () => {
        stopped = true;
        t.subscribers.delete(live);
      },
    };
  }

  async lastLsn(table: string): Promise<Lsn> {
    return (await this.table(table)).durableLsn;
  }

  async damage(table: string): Promise<LogDamage | undefined> {
    return (await this.table(table)).damage;
  }

  async health(): Promise<LogHealth> {
    if (!this.lastError) return { writable: true };
    // A write failed: see whether the disk takes a durable write of that size again.
    const probe = path.join(this.dir, '.write-probe');
    try {
      const f = await this.fs.open(probe);
      try {
        await writeFully(f, new Uint8Array(Math.min(Math.max(this.failedBytes, 4096), 16 << 20)), 0, probe);
        await f.datasync();
      } finally {
        await f.close();
        await this.fs.rm(probe);
      }
      this.lastError = undefined;
      return { writable: true };
    } catch {
      return { writable: false, error: this.lastError };
    }
  }

  async truncate(table: string, throughLsn: Lsn): Promise<void> {
    const t = await this.table(table);
    if (t.damage) return; // the evidence stays until a repair
    await t.exclusive(async () => {
      if (t.durableLsn <= throughLsn && t.queue.length === 0 && t.activeBytes > 0) {
        // Everything in the active segment is covered: start a fresh one so the old can go.
        await t.roll(t.nextLsn).catch(() => undefined);
      }
      const keep: Segment[] = [];
      for (let i = 0; i < t.segments.length; i++) {
        const next = t.segments[i + 1];
        if (next && next.name.firstLsn <= throughLsn + 1n) await this.fs.rm(t.segments[i].file);
        else keep.push(t.segments[i]);
      }
      t.segments = keep;
    });
  }

  async startAfter(table: string, lsn: Lsn): Promise<void> {
    await (await this.table(table)).startAfter(lsn);
  }

  async dropTable(table: string): Promise<void> {
    // A seal outlives the drop (a renamed table's old name takes no appends until a table of
    // that name is created again, which unseals it).
    const t = await this.table(table);
    await t.exclusive(() => t.closeHandle());
    t.subscribers.clear();
    this.tables.delete(table);
    await this.fs.rm(t.dir);
  }

  async close(): Promise<void> {
    for (const p of this.tables.values()) {
      const t = await p.catch(() => undefined);
      if (!t) continue;
      await t.exclusive(() => t.closeHandle());
    }
    this.tables.clear();
  }

  /** How many segment files are open now (for tests and status). */
  get openFileCount(): number {
    return this.openFiles.size;
  }
}
