/**
 * Getting a leased read snapshot. The protocol with the garbage collector: read the pointer,
 * then write a lease on the snapshot it names, both within `leaseWindowMs` (half the time the
 * collector waits before deleting a file no snapshot refers to). If it took longer, the lease
 * is dropped and the read starts over, so a reader never holds a snapshot whose files are gone.
 */
import { randomBytes } from 'node:crypto';
import type { Lease, TablePointer } from '../lib/catalog/catalog.ts';
import type { SnapshotManifest } from '../lib/engine/snapshot-manifest.ts';
import type { Lsn } from '../lib/lsn.ts';
import { ApiError, notFound } from './api-error.ts';
import type { Services } from './services.ts';

export interface LeasedSnapshot {
  pointer: TablePointer;
  manifest: SnapshotManifest;
  lease: Lease;
}

/** The pointer names a read snapshot that covers `minLsn`. */
function covers(p: TablePointer | undefined, minLsn: Lsn): p is TablePointer {
  return p?.snapshotKey !== undefined && p.lsn >= minLsn;
}

/** Waits (bounded) until the table's read snapshot covers `minLsn`; returns the pointer. */
export async function waitForSnapshot(
  s: Services,
  table: string,
  minLsn: Lsn,
  maxWaitMs = s.limits.maxWaitMs,
  /** `minLsn` is the recovery floor: past the wait, 503 `recovering` rather than 504. */
  recovering = false,
): Promise<TablePointer> {
  const deadline = Date.now() + maxWaitMs;
  let p = await s.catalog.getPointer(table);
  if (covers(p, minLsn)) return p;
  const asked = s.writer
    .requestSnapshot(table, minLsn)
    .catch((e) => s.logger.debug('snapshot request failed', { error: e }));
  let delay = 2;
  for (;;) {
    await Promise.race([asked, new Promise((r) => setTimeout(r, delay))]);
    p = await s.catalog.getPointer(table);
    if (covers(p, minLsn)) return p;
    if (Date.now() > deadline) {
      if (!p && !(await s.catalog.getTable(table))) throw notFound(`table "${table}"`);
      if (recovering)
        throw new ApiError(
          503,
          'recovering',
          `table "${table}" is replaying its log after a restart (to LSN ${minLsn}); retry`,
          { lsn: String(minLsn) },
          { 'Retry-After': '1' },
        );
      throw new ApiError(
        504,
        'snapshot_timeout',
        `no snapshot covers LSN ${minLsn} after ${maxWaitMs} ms; retry`,
        { lsn: String(minLsn) },
        { 'Retry-After': '1' },
      );
    }
    delay = Math.min(delay * 2, 50);
  }
}

export function newLeaseId(table: string): string {
  return `${table}.${randomBytes(12).toString('base64url')}`;
}

/**
 * What a read must see at least: `minLsn`, or while the writer replays its log after a restart,
 * the log's end as of then (a read without `minLsn` does not see less than before the restart).
 */
export function readFloor(s: Services, table: string, minLsn: Lsn): { lsn: Lsn; recovering: boolean } {
  const target = s.writer.recoveryTarget?.(table);
  return target !== undefined && target > minLsn
    ? { lsn: target, recovering: true }
    : { lsn: minLsn, recovering: false };
}

export async function leaseSnapshot(s: Services, table: string, minLsn: Lsn): Promise<LeasedSnapshot> {
  const floor = readFloor(s, table, minLsn);
  for (let attempt = 0; attempt < 5; attempt++) {
    const pointer = await waitForSnapshot(s, table, floor.lsn, undefined, floor.recovering);
    // waitForSnapshot returns right after reading the pointer.
    const pointerReadAt = Date.now();
    const lease: Lease = {
      leaseId: newLeaseId(table),
      table,
      snapshotKey: pointer.snapshotKey!,
      expiresAt: Date.now() + s.limits.leaseTtlMs,
    };
    await s.catalog.putLease(lease);
    if (s.limits.leaseWindowMs > 0 && Date.now() - pointerReadAt > s.limits.leaseWindowMs) {
      await s.catalog.deleteLease(lease.leaseId).catch(() => undefined);
      continue;
    }
    const manifest = await s.reader.manifest(lease.snapshotKey);
    return { pointer, manifest, lease };
  }
  throw new ApiError(
    503,
    'lease_unavailable',
    'could not lease a snapshot in time; retry',
    {},
    { 'Retry-After': '1' },
  );
}
