/**
 * The table's scheduling decisions without I/O: MaintenanceScheduler (commits and compactions
 * taking turns, waiters, deferred flushes, snapshots one at a time), the retry policies, and the
 * virtual clock the simulation runs on.
 */

import { describe, expect, it } from 'vitest';
import { type CommitInfo, MaintenanceScheduler } from '../lib/engine/maintenance-scheduler.ts';
import { asLsn } from '../lib/lsn.ts';
import { VirtualClock } from '../lib/util/clock.ts';
import { Backoff, backoffDelay, isTransient, PermanentError, RETRY, retrying } from '../lib/util/retry.ts';

const waiter = (log: string[], name: string) => ({
  resolve: (c: CommitInfo) => log.push(`${name} ok ${c.lsn}`),
  reject: (e: unknown) => log.push(`${name} failed ${(e as Error).message}`),
});

describe('maintenance scheduler', () => {
  it('runs one commit or compaction at a time; what was asked meanwhile runs next, a waited-for commit first', () => {
    const s = new MaintenanceScheduler();
    expect(s.requestCommit()).toBe(true);
    s.status = 'committing';
    // Asked while the commit runs: both wait.
    expect(s.requestCompaction(false)).toBe(false);
    expect(s.requestCommit()).toBe(false);
    s.status = 'idle';
    // Nobody waits for the commit: the compaction goes first, the commit after it.
    expect(s.next()).toEqual({ job: 'compact', busy: false });
    expect(s.requestCompaction(false)).toBe(true);
    s.status = 'compacting';
    s.status = 'idle';
    expect(s.next()).toEqual({ job: 'commit' });
    expect(s.requestCommit()).toBe(true);
    expect(s.next()).toBeUndefined();
  });

  it('a flush request waiting for a commit goes before a waiting compaction', () => {
    const s = new MaintenanceScheduler();
    const log: string[] = [];
    s.status = 'compacting';
    expect(s.requestCompaction(false)).toBe(false);
    expect(s.requestCommit(waiter(log, 'a'))).toBe(false);
    s.status = 'idle';
    expect(s.next()).toEqual({ job: 'commit' });
  });

  it('a compaction may wait for quiet only if every request for it may', () => {
    const s = new MaintenanceScheduler();
    s.status = 'committing';
    s.requestCompaction(true);
    expect(s.compactBusy).toBe(true);
    s.requestCompaction(false);
    s.requestCompaction(true);
    expect(s.compactBusy).toBe(false);
  });

  it("hands a commit's waiters their answer, or keeps them for another round when more was applied since", () => {
    const s = new MaintenanceScheduler();
    const log: string[] = [];
    s.requestCommit(waiter(log, 'a'));
    expect(s.takeCommitWaiters(asLsn(10n), asLsn(12n))).toEqual([]);
    expect(s.commitRequested).toBe(true);
    const ready = s.takeCommitWaiters(asLsn(12n), asLsn(12n));
    expect(ready).toHaveLength(1);
    for (const w of ready) w.resolve({ lsn: asLsn(12n), metadataLocation: undefined, snapshotId: undefined });
    expect(log).toEqual(['a ok 12']);
  });

  it('defers flush requests and applied-waits until their LSN is applied', () => {
    const s = new MaintenanceScheduler();
    const log: string[] = [];
    s.deferCommit(asLsn(5n), waiter(log, 'f5'));
    s.deferCommit(asLsn(9n), waiter(log, 'f9'));
    s.waitApplied(asLsn(7n), () => log.push('applied 7'));
    let due = s.appliedThrough(asLsn(6n));
    expect(due.resolved).toHaveLength(0);
    expect(due.commits).toHaveLength(1);
    due = s.appliedThrough(asLsn(9n));
    for (const r of due.resolved) r();
    expect(due.commits).toHaveLength(1);
    expect(log).toEqual(['applied 7']);
    expect(s.appliedThrough(asLsn(100n))).toEqual({ resolved: [], commits: [] });
  });

  it('writes one snapshot at a time and one more when asked during it', () => {
    const s = new MaintenanceScheduler();
    expect(s.requestSnapshot()).toBe(true);
    s.snapshot = 'writing';
    expect(s.requestSnapshot()).toBe(false);
    expect(s.requestSnapshot()).toBe(false);
    expect(s.snapshotDone()).toBe(true);
    expect(s.requestSnapshot()).toBe(true);
    s.snapshot = 'writing';
    expect(s.snapshotDone()).toBe(false);
  });

  it('fails every waiting request at stop', () => {
    const s = new MaintenanceScheduler();
    const log: string[] = [];
    s.requestCommit(waiter(log, 'c'));
    s.deferCommit(asLsn(3n), waiter(log, 'd'));
    s.readers.push({
      minLsn: asLsn(1n),
      resolve: () => log.push('read ok'),
      reject: () => log.push('read failed'),
    });
    for (const w of s.takeAllWaiters()) w.reject(new Error('closed'));
    expect(log.sort()).toEqual(['c failed closed', 'd failed closed', 'read failed']);
    expect(s.takeAllWaiters()).toEqual([]);
  });

  it('retries commits six times with doubling back-offs, then gives up and starts counting again', () => {
    const s = new MaintenanceScheduler();
    const delays: (number | undefined)[] = [];
    for (let i = 0; i < 8; i++) delays.push(s.commitRetry.failed());
    expect(delays).toEqual([200, 400, 800, 1600, 3200, 6400, undefined, 200]);
    s.commitRetry.succeeded();
    expect(s.commitRetry.failures).toBe(0);
    // Flushes are never given up; their back-off stops at 30 s.
    const flush = new Backoff(RETRY.flush);
    let last = 0;
    for (let i = 0; i < 20; i++) last = flush.failed() ?? -1;
    expect(last).toBe(30_000);
  });
});

describe('retry module', () => {
  it('classifies once: permanent errors (and programming errors) are not retried', async () => {
    expect(isTransient(new Error('socket hang up'))).toBe(true);
    expect(isTransient(new PermanentError('no'))).toBe(false);
    expect(isTransient(Object.assign(new Error('fenced'), { permanent: true }))).toBe(false);
    expect(isTransient(new TypeError('x is undefined'))).toBe(false);
    let calls = 0;
    await expect(
      retrying(RETRY.pointer, async () => {
        calls++;
        throw new PermanentError('fenced');
      }),
    ).rejects.toThrow('fenced');
    expect(calls).toBe(1);
  });

  it('retries transient failures with the policy’s back-off, on the given clock', async () => {
    const clock = new VirtualClock(0, { autoAdvance: true });
    const seen: number[] = [];
    const result = await retrying(
      RETRY.pointer,
      async (attempt) => {
        if (attempt < 4) throw new Error('busy');
        return attempt;
      },
      { clock, onRetry: (_e, _attempt, ms) => seen.push(ms) },
    );
    clock.stop();
    expect(result).toBe(4);
    expect(seen).toEqual([20, 40, 80]);
    expect(clock.now()).toBe(140);
    await expect(
      retrying({ ...RETRY.put, firstDelayMs: 0 }, async () => {
        throw new Error('down');
      }),
    ).rejects.toThrow('down');
    expect(backoffDelay(RETRY.commit, 10)).toBe(10_000);
  });
});

describe('virtual clock', () => {
  it('fires timers in time order (ties in the order set), intervals until cancelled', () => {
    const clock = new VirtualClock(1000);
    const log: string[] = [];
    clock.after(30, () => log.push(`b@${clock.now()}`));
    clock.after(10, () => log.push(`a@${clock.now()}`));
    clock.after(30, () => log.push(`c@${clock.now()}`));
    const every = clock.every(25, () => log.push(`tick@${clock.now()}`));
    clock.advance(60);
    every.cancel();
    clock.advance(100);
    expect(log).toEqual(['a@1010', 'tick@1025', 'b@1030', 'c@1030', 'tick@1050']);
    expect(clock.now()).toBe(1160);
    expect(clock.pending).toBe(0);
  });

  it('moves itself when the process is idle, so awaited back-offs take no real time', async () => {
    const clock = new VirtualClock(0, { autoAdvance: true });
    const started = performance.now();
    await clock.sleep(60_000);
    await Promise.all([clock.sleep(5_000), clock.sleep(1_000)]);
    clock.stop();
    expect(clock.now()).toBe(65_000);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
