/**
 * The durable log: a write is acknowledged only once it is here. Each table's transactions get
 * increasing LSNs; the writer subscribes and applies them in order, and after an Iceberg commit
 * covering LSN L the log may drop everything up to L.
 */
import type { Lsn } from '../lsn.ts';

/** `D`: what the appender decoded the payload into (the writer's logs hold decoded operations). */
export interface LogEntry<D = unknown> {
  lsn: Lsn;
  /** The transaction as stored (JSON text of `{"ops":[...]}`). */
  payload: Uint8Array;
  /** The validated transaction when the entry was appended by this process (saves a re-parse). */
  decoded?: D;
}

/** Where a table's log was found damaged (a bad record that is not a torn tail). */
export interface LogDamage {
  table: string;
  /** The segment file holding the bad record; it is kept as found. */
  segment: string;
  /** Byte offset of the bad record in the segment. */
  offset: number;
  /** The LSN the bad record should carry. */
  lsn: string;
  reason: string;
  /** Whether intact records follow the bad one (they are not applied until a repair). */
  intactAfter: boolean;
}

/** Writes to a table whose log is damaged are refused until it is repaired. */
export class LogDamagedError extends Error {
  readonly code = 'table_damaged';
  constructor(readonly damage: LogDamage) {
    super(
      `the log of table "${damage.table}" is damaged at ${damage.segment} offset ${damage.offset} (LSN ${damage.lsn}: ${damage.reason}); writes are refused until it is repaired (see "Repairing a damaged log" in the README)`,
    );
  }
}

export interface LogHealth {
  writable: boolean;
  /** The last write failure, while it lasts. */
  error?: { code: string; message: string; table?: string; at: string };
}

export interface LogSubscription {
  stop(): void;
}

export interface DurableLog<D = unknown> {
  readonly description: string;
  /** Appends one transaction; resolves with its LSN once durable. */
  append(table: string, payload: Uint8Array, decoded?: D): Promise<Lsn>;
  /**
   * Delivers every entry with LSN > `afterLsn` in LSN order: first what is stored, then new
   * entries as they become durable.
   */
  subscribe(table: string, afterLsn: Lsn, onEntry: (entry: LogEntry<D>) => void): Promise<LogSubscription>;
  /** The newest durable LSN of a table (0 when empty). */
  lastLsn(table: string): Promise<Lsn>;
  /**
   * An LSN at or after every transaction acknowledged before the call, when {@link lastLsn}
   * cannot know it (a shared stream): appends a marker record (`{"marker": ...}`) that the
   * writer skips. Logs that know their end do not need this.
   */
  barrier?(table: string): Promise<Lsn>;
  /**
   * Makes every LSN the table's log hands out from now on greater than `lsn`, for logs that
   * number each table's transactions themselves: a table whose log is new or was lost (a
   * renamed table, a deleted folder) must not get LSNs its Iceberg commits already cover.
   */
  startAfter?(table: string, lsn: Lsn): Promise<void>;
  /**
   * Refuses appends to the table with `reason` from now on (a rename is under way), or takes
   * appends again when `reason` is undefined. Logs that other processes append to cannot.
   */
  seal?(table: string, reason: Error | undefined): void;
  /** Allows the log to drop entries with LSN ≤ `throughLsn`. */
  truncate(table: string, throughLsn: Lsn): Promise<void>;
  dropTable(table: string): Promise<void>;
  close(): Promise<void>;
  /** Damage found when the table's log was read; such a table takes no writes. */
  damage?(table: string): Promise<LogDamage | undefined>;
  /** Followers stop delivering while `holdBack` answers true (the writer's memory budget). */
  pauseWhile?(holdBack: () => boolean): void;
  /** Whether the log can take writes now (e.g. its disk is not full). */
  health?(): Promise<LogHealth>;
}
