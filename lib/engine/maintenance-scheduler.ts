/**
 * The table's maintenance scheduling, kept apart from its data (table-state.ts) and from the
 * I/O (the jobs): what runs next, who waits for what, and when to try again. Pure — no I/O, no
 * timers, no promises of its own — so its decisions are unit-tested directly.
 *
 * Iceberg commits and compactions take turns (`status`); read snapshots are published one at
 * a time (`snapshot`); requests that cannot be served yet wait here until an LSN is applied, a
 * snapshot covers it, or a commit is done.
 */

import type { Lsn } from '../lsn.ts';
import type { ObjectKey } from '../store/object-keys.ts';
import { Backoff, RETRY } from '../util/retry.ts';

/** Commits and compactions: at most one runs. */
export type MaintenanceStatus = 'idle' | 'committing' | 'compacting';

/** Read snapshots: at most one is being written; `wanted` asks for another once it is done. */
export type SnapshotStatus = 'idle' | 'writing' | 'writing-wanted';

export interface PublishedSnapshot {
  lsn: Lsn;
  objectKey: ObjectKey;
  seq: number;
}

export interface CommitInfo {
  lsn: Lsn;
  metadataLocation: string | undefined;
  snapshotId: number | undefined;
}

export interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

export type CommitWaiter = Waiter<CommitInfo>;

export interface SnapshotWaiter extends Waiter<PublishedSnapshot> {
  minLsn: Lsn;
}

/** What to run after a commit or compaction finished. */
export type NextMaintenance = { job: 'compact'; busy: boolean } | { job: 'commit' } | undefined;

export class MaintenanceScheduler {
  status: MaintenanceStatus = 'idle';
  snapshot: SnapshotStatus = 'idle';
  /** Flush requests (commits) waiting for the commit that will include what they asked for. */
  readonly commitWaiters: CommitWaiter[] = [];
  /** A commit was asked for while another job ran. */
  commitRequested = false;
  /** A commit in progress waits for the slices frozen through this LSN to be flushed. */
  commitFlushTarget: Lsn | undefined;
  /** A compaction was asked for while another job ran; `compactBusy`: each asker may wait for quiet. */
  compactRequested = false;
  compactBusy = false;
  /** Flush requests waiting for their LSN to be applied. */
  private deferred: { minLsn: Lsn; waiter?: CommitWaiter }[] = [];
  /** Callers waiting for the table to have applied an LSN. */
  private applied: { lsn: Lsn; resolve: () => void }[] = [];
  /** Reads waiting for a snapshot covering their LSN. */
  readonly readers: SnapshotWaiter[] = [];
  readonly commitRetry = new Backoff(RETRY.commit);
  readonly flushRetry = new Backoff(RETRY.flush);

  /** A commit is asked for (a flush request brings its waiter): true when it may start now. */
  requestCommit(waiter?: CommitWaiter): boolean {
    if (waiter) this.commitWaiters.push(waiter);
    if (this.status !== 'idle') {
      this.commitRequested = true;
      return false;
    }
    this.commitRequested = false;
    return true;
  }

  /** A compaction pass is asked for (`busy`: by a timer while writes keep the loop busy): true when it may start now. */
  requestCompaction(busy: boolean): boolean {
    if (this.status !== 'idle') {
      // It may wait for quiet only if every request for it may.
      this.compactBusy = this.compactRequested ? this.compactBusy && busy : busy;
      this.compactRequested = true;
      return false;
    }
    this.compactRequested = false;
    return true;
  }

  /** After a partitioned table's pass: the next partition's pass goes right after. */
  continueCompaction(): void {
    if (this.compactRequested) return;
    this.compactRequested = true;
    this.compactBusy = false;
  }

  /** What runs after a commit or compaction: a waiting compaction goes first unless someone waits for a commit. */
  next(): NextMaintenance {
    const waiting = this.commitWaiters.length > 0;
    if (this.compactRequested && !waiting) return { job: 'compact', busy: this.compactBusy };
    if (this.commitRequested || waiting) return { job: 'commit' };
    if (this.compactRequested) return { job: 'compact', busy: this.compactBusy };
    return undefined;
  }

  /**
   * The commit through `lsn` is done: its waiters, unless the table applied more since they
   * asked (then they wait for another round, which is requested).
   */
  takeCommitWaiters(lsn: Lsn, appliedLsn: Lsn): CommitWaiter[] {
    const waiters = this.commitWaiters.splice(0);
    if (appliedLsn > lsn && waiters.length > 0) {
      this.commitWaiters.push(...waiters);
      this.commitRequested = true;
      return [];
    }
    return waiters;
  }

  /** A flush request for an LSN not applied yet waits for it. */
  deferCommit(minLsn: Lsn, waiter?: CommitWaiter): void {
    this.deferred.push({ minLsn, waiter });
  }

  waitApplied(lsn: Lsn, resolve: () => void): void {
    this.applied.push({ lsn, resolve });
  }

  /** The table applied through `lsn`: the callers now served, and the flush requests now due. */
  appliedThrough(lsn: Lsn): { resolved: (() => void)[]; commits: (CommitWaiter | undefined)[] } {
    const resolved: (() => void)[] = [];
    const commits: (CommitWaiter | undefined)[] = [];
    if (this.applied.length > 0) {
      for (const w of this.applied) if (w.lsn <= lsn) resolved.push(w.resolve);
      this.applied = this.applied.filter((w) => w.lsn > lsn);
    }
    if (this.deferred.length > 0) {
      for (const c of this.deferred) if (c.minLsn <= lsn) commits.push(c.waiter);
      this.deferred = this.deferred.filter((c) => c.minLsn > lsn);
    }
    return { resolved, commits };
  }

  /** A snapshot is asked for: true when one may be written now (else one is written after the current one). */
  requestSnapshot(): boolean {
    if (this.snapshot === 'idle') return true;
    this.snapshot = 'writing-wanted';
    return false;
  }

  /** A snapshot write is done: true when another was asked for meanwhile. */
  snapshotDone(): boolean {
    const again = this.snapshot === 'writing-wanted';
    this.snapshot = 'idle';
    return again;
  }

  /** Every request still waiting: they fail when the table stops. */
  takeAllWaiters(): Waiter<never>[] {
    const all: Waiter<never>[] = [...this.readers.splice(0), ...this.commitWaiters.splice(0)];
    for (const c of this.deferred.splice(0)) if (c.waiter) all.push(c.waiter);
    return all;
  }
}
