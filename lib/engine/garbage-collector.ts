/**
 * Garbage collection. Files leave the table's view all the time: tail files and deletion
 * vectors superseded by newer snapshots, files replaced by compaction, Iceberg files of expired
 * snapshots, old snapshot manifests. They become *candidates*; a candidate is deleted only when
 * no published snapshot, no snapshot under a live lease, no retained Iceberg snapshot and no
 * write in flight refers to it, and only after it has been a candidate for `candidateGraceMs`:
 * a reader reads the pointer and then takes its lease, and must finish both within half that
 * time (readers check), so a snapshot a reader is about to lease is never collected under it.
 * An orphan sweep also removes old objects under the table that
 * nothing refers to (left behind by a crash).
 */

import type { Catalog } from '../catalog/catalog.ts';
import { parseObjectKey } from '../store/object-keys.ts';
import type { ObjectStore } from '../store/object-store.ts';
import { NotFoundError } from '../store/object-store.ts';
import { type Clock, systemClock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import { parseSnapshotManifest, snapshotObjectKeys } from './snapshot-manifest.ts';

export interface GarbageCollectorDeps {
  table: string;
  /** Prefixes the orphan sweep lists. */
  roots: string[];
  store: ObjectStore;
  catalog: Catalog;
  logger: Logger;
  orphanGraceMs: number;
  candidateGraceMs: number;
  /** Time for the grace periods (default: the system's). */
  clock?: Clock;
  /** Keys the writer uses or may publish now. */
  inUse: () => Set<string>;
  /** Keys any retained Iceberg snapshot or metadata file refers to. */
  icebergKeys: () => Promise<Set<string>>;
}

export class GarbageCollector {
  /** Candidate key → when it became one. */
  private readonly candidates = new Map<string, number>();
  private readonly leasedSnapshots = new Map<string, string[]>();
  private running: Promise<{ deleted: number }> | undefined;
  totalDeleted = 0;

  constructor(private readonly deps: GarbageCollectorDeps) {}

  private now(): number {
    return (this.deps.clock ?? systemClock).now();
  }

  addCandidates(keys: Iterable<string>): void {
    const now = this.now();
    for (const k of keys) if (!this.candidates.has(k)) this.candidates.set(k, now);
  }

  get candidateCount(): number {
    return this.candidates.size;
  }

  /** One pass; concurrent calls share it. */
  collect(options: { orphans?: boolean } = {}): Promise<{ deleted: number }> {
    if (!this.running) {
      this.running = this.pass(options.orphans ?? false).finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  /** Keys referenced by snapshots that live leases hold. */
  private async leasedKeys(): Promise<Set<string>> {
    const now = this.now();
    const leases = (await this.deps.catalog.listLeases(this.deps.table)).filter((l) => l.expiresAt > now);
    const keys = new Set<string>();
    const live = new Set(leases.map((l) => l.snapshotKey));
    for (const k of this.leasedSnapshots.keys()) if (!live.has(k)) this.leasedSnapshots.delete(k);
    for (const snapshotKey of live) {
      let files = this.leasedSnapshots.get(snapshotKey);
      if (!files) {
        try {
          files = snapshotObjectKeys(
            parseSnapshotManifest(await this.deps.store.get(snapshotKey), snapshotKey),
          );
        } catch (e) {
          if (!(e instanceof NotFoundError)) throw e;
          files = [];
        }
        this.leasedSnapshots.set(snapshotKey, files);
      }
      keys.add(snapshotKey);
      for (const f of files) keys.add(f);
    }
    return keys;
  }

  private async pass(orphans: boolean): Promise<{ deleted: number }> {
    if (this.candidates.size === 0 && !orphans) return { deleted: 0 };
    // Only objects older than the pass (less the grace) can be orphans: a commit that starts
    // after the Iceberg keys below were read writes newer ones.
    const cutoff = this.now() - this.deps.orphanGraceMs;
    // Order matters: what is in use is read last, so nothing published meanwhile is missed.
    const iceberg = await this.deps.icebergKeys();
    const leased = await this.leasedKeys();
    const inUse = this.deps.inUse();
    const keep = (k: string): boolean => inUse.has(k) || leased.has(k) || iceberg.has(k);
    const ripe = this.now() - this.deps.candidateGraceMs;
    const doomed = [...this.candidates].filter(([k, since]) => since <= ripe && !keep(k)).map(([k]) => k);
    // Candidates that are in use again (e.g. a file a lease still holds) wait for the next pass.
    if (orphans) {
      for (const root of this.deps.roots) {
        for await (const o of this.deps.store.list(`${root}/`)) {
          if (o.lastModified.getTime() >= cutoff) continue;
          if (parseObjectKey(o.key)?.kind === 'version-hint') continue;
          if (!keep(o.key) && !this.candidates.has(o.key)) doomed.push(o.key);
        }
      }
    }
    // Check once more against what is in use right now (a snapshot may have published).
    const now = this.deps.inUse();
    const finalList = doomed.filter((k) => !now.has(k));
    for (let i = 0; i < finalList.length; i += 1000)
      await this.deps.store.deleteMany(finalList.slice(i, i + 1000));
    for (const k of doomed) this.candidates.delete(k);
    if (finalList.length > 0) {
      this.deps.logger.debug('garbage collected', {
        deleted: finalList.length,
        keys: finalList,
        leased: [...this.leasedSnapshots.keys()],
      });
    }
    this.totalDeleted += finalList.length;
    return { deleted: finalList.length };
  }
}
