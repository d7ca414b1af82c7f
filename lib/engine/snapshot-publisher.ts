/**
 * Read snapshots: every second (or when a read asks for an LSN not yet published) the table's
 * state is captured — data files with their deletion vectors, and the MemSlices' rows as tail
 * files — written off the loop (snapshot-writer.ts), and the catalog pointer moved to it.
 * `snapshot-done` makes it the published one and serves the reads waiting for it. One is
 * written at a time; a failed one is tried again (RETRY.snapshot).
 *
 * Reads never go back across a restart: a reopened table publishes nothing below the pointer
 * it found until replay reaches it (or SNAPSHOT_HOLD_MAX_MS passes).
 */

import { encodeDeletionVector } from '../iceberg/deletion-vector.ts';
import { RoaringBitmap64 } from '../iceberg/roaring.ts';
import { type Lsn, ZERO_LSN } from '../lsn.ts';
import { partitionRecord, withDroppedFields } from '../schema/partition-spec.ts';
import { snapshotDvKey, snapshotManifestKey, tailFileKey } from '../store/object-keys.ts';
import { RETRY } from '../util/retry.ts';
import type { DataFile } from './data-file.ts';
import type { IcebergCommits } from './iceberg-commits.ts';
import type { PublishedSnapshot, SnapshotWaiter } from './maintenance-scheduler.ts';
import type { DeletionVectorRef } from './mem-slice.ts';
import { snapshotObjectKeys } from './snapshot-manifest.ts';
import {
  type CapturedBlob,
  type CapturedFile,
  type CapturedTail,
  type SnapshotCapture,
  type SnapshotWritten,
  writeSnapshot,
} from './snapshot-writer.ts';
import type { TableContext } from './table-context.ts';

const NO_DV: CapturedFile['dv'] = { kind: 'none' };

/**
 * The deletion vector a snapshot gives a file (data or tail) that has deletes: the blob the
 * last published snapshot points to while it is current, else a new blob serialized now.
 */
function captureDv(
  target: { dvDirty: boolean; dvRef?: DeletionVectorRef },
  fileKey: string,
  deletes: () => RoaringBitmap64,
  blobs: CapturedBlob[],
): CapturedFile['dv'] {
  if (!target.dvDirty && target.dvRef) return { kind: 'keep', ref: target.dvRef };
  const bm = deletes();
  blobs.push({ fileKey, blob: encodeDeletionVector(bm), cardinality: bm.size });
  target.dvDirty = false;
  return { kind: 'new', blob: blobs.length - 1 };
}

/** How long a reopened table waits for replay to reach its old pointer before publishing anyway. */
const SNAPSHOT_HOLD_MAX_MS = 30_000;

export class SnapshotPublisher {
  private published: (PublishedSnapshot & { stateVersion: number; keys: Set<string> }) | undefined;
  private seq = 0;
  /** Keys the snapshot being written names (kept from the collector until it is done). */
  private inFlightKeys = new Set<string>();
  /** No snapshot is published below this LSN (the pointer found at open); 0 when released. */
  private holdBelow: Lsn;
  private readonly holdSince: number;
  private readonly partitionRecords = new WeakMap<DataFile, Record<string, unknown>>();

  constructor(
    private readonly t: TableContext,
    private readonly commits: IcebergCommits,
    pointerLsn: Lsn,
  ) {
    this.holdBelow = pointerLsn;
    this.holdSince = t.clock.now();
  }

  /** The LSN of the newest published snapshot (undefined before the first). */
  get lsn(): Lsn | undefined {
    return this.published?.lsn;
  }

  /** Lets snapshots below the pointer found at open be published. */
  releaseHold(): void {
    this.holdBelow = ZERO_LSN;
  }

  /** The table applied through `lsn`: a hold it passed ends (publish now), waiting reads may be served. */
  applied(lsn: Lsn): void {
    if (this.holdBelow !== ZERO_LSN && lsn >= this.holdBelow) {
      this.holdBelow = ZERO_LSN;
      this.t.post({ type: 'snapshot' });
    }
    this.serveWaiters();
  }

  read(w: SnapshotWaiter): void {
    const t = this.t;
    if (t.fenced) return w.reject(t.fenced);
    if (this.published && this.published.lsn >= w.minLsn) return w.resolve(this.public());
    t.sched.readers.push(w);
    this.serveWaiters();
  }

  private public(): PublishedSnapshot {
    const p = this.published;
    if (!p) throw new Error('no snapshot is published');
    return { lsn: p.lsn, objectKey: p.objectKey, seq: p.seq };
  }

  /** Resolves reads a published snapshot covers; asks for a snapshot when one is needed now. */
  private serveWaiters(): void {
    const waiters = this.t.sched.readers;
    if (waiters.length === 0) return;
    const p = this.published;
    let needed = false;
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      if (p && p.lsn >= w.minLsn) {
        waiters.splice(i, 1);
        w.resolve(this.public());
      } else if (this.t.state.appliedLsn >= w.minLsn) needed = true;
    }
    if (needed) this.request();
  }

  /** A snapshot is asked for (timer, read, commit): written now unless one is being written or nothing changed. */
  request(): void {
    const t = this.t;
    const state = t.state;
    if (t.fenced) return;
    if (!t.sched.requestSnapshot()) return;
    if (this.published && this.published.stateVersion === state.stateVersion) return;
    if (state.appliedLsn < this.holdBelow) {
      // Replay has not reached what readers saw before the restart; the old pointer serves them.
      if (t.clock.now() - this.holdSince < SNAPSHOT_HOLD_MAX_MS) return;
      t.log.warn('replay did not reach the read pointer of before the restart; publishing anyway', {
        appliedLsn: state.appliedLsn,
        pointerLsn: this.holdBelow,
      });
      this.holdBelow = ZERO_LSN;
    }
    const capture = this.capture();
    t.sched.snapshot = 'writing';
    const deps = t.deps;
    const commits = this.commits;
    writeSnapshot(capture, {
      table: t.name,
      ephemeralRoot: t.ephemeralRoot,
      schema: state.schema,
      specs: t.specs,
      store: deps.store,
      pool: deps.pool,
    })
      .then(async (written) => {
        // Each pointer update also carries the latest Iceberg commit, so a commit whose own
        // pointer update failed reaches the catalog with the next snapshot.
        await deps.pointer.update((p) => ({
          ...p,
          snapshotKey: written.manifestKey,
          lsn: capture.lsn,
          // Never move the pointer's Iceberg fields back: a commit may have moved them first.
          ...(p.committedLsn >= commits.committedLsn ? {} : commits.pointerFields()),
        }));
        return written;
      })
      .then(
        (written) => t.post({ type: 'snapshot-done', capture, written }),
        (error) => t.post({ type: 'snapshot-done', capture, error }),
      );
  }

  /** A partitioned data file's spec and partition as snapshots show them (computed once per file). */
  private partitionOf(f: DataFile): { specId?: number; partition?: Record<string, unknown> } {
    if (f.partition.length === 0) return {};
    let record = this.partitionRecords.get(f);
    if (!record) {
      const spec = this.t.specs.get(f.specId);
      if (!spec) return {};
      record = partitionRecord(
        spec,
        withDroppedFields(this.t.state.schema.fields, this.t.schemas.values()),
        f.partition,
      );
      this.partitionRecords.set(f, record);
    }
    return { specId: f.specId, partition: record };
  }

  /** What the next read snapshot holds; deletion vectors that changed are serialized now. */
  private capture(): SnapshotCapture {
    const t = this.t;
    const state = t.state;
    const files: CapturedFile[] = [];
    const tails: CapturedTail[] = [];
    const blobs: CapturedBlob[] = [];
    for (const f of state.files.values()) {
      if (f.removedLsn !== undefined) continue;
      const dv = f.deletes.isEmpty() ? NO_DV : captureDv(f, f.objectKey, () => f.deletes, blobs);
      files.push({
        kind: 'data',
        key: f.objectKey,
        rowCount: f.rowCount,
        sizeBytes: f.sizeBytes,
        dv,
        ...this.partitionOf(f),
      });
    }
    state.active.seal();
    for (const slice of state.slices()) {
      for (const seg of slice.segments) {
        if (seg.key === undefined) {
          seg.key = tailFileKey(t.ephemeralRoot, t.newId());
          tails.push({ slice, segment: seg });
        }
        if (seg.deletedCount === seg.end - seg.start) continue; // every row deleted: leave it out
        const dv =
          seg.deletedCount === 0
            ? NO_DV
            : captureDv(
                seg,
                seg.key,
                () => {
                  const bm = new RoaringBitmap64();
                  for (const p of slice.segmentDeletes(seg)) bm.add(p);
                  return bm;
                },
                blobs,
              );
        files.push({
          kind: 'tail',
          key: seg.key,
          rowCount: seg.end - seg.start,
          sizeBytes: seg.sizeBytes ?? 0,
          dv,
        });
      }
    }
    const seq = ++this.seq;
    const lsn = state.appliedLsn;
    const capture: SnapshotCapture = {
      lsn,
      seq,
      stateVersion: state.stateVersion,
      files,
      tails,
      blobs,
      // Named now, so the garbage collector knows them before they are published.
      manifestKey: snapshotManifestKey(t.ephemeralRoot, lsn, seq, t.newId()),
      dvKey: snapshotDvKey(t.ephemeralRoot, t.newId()),
    };
    for (const f of files) this.inFlightKeys.add(f.key);
    this.inFlightKeys.add(capture.manifestKey);
    this.inFlightKeys.add(capture.dvKey);
    return capture;
  }

  /** `snapshot-done`: the snapshot is published (or, failed, tried again). */
  done(capture: SnapshotCapture, written: SnapshotWritten | undefined, error: unknown): void {
    const t = this.t;
    const state = t.state;
    const again = t.sched.snapshotDone();
    const named = this.inFlightKeys;
    this.inFlightKeys = new Set();
    if (error || !written) {
      if (t.deps.pointer.fencedBy) return t.fence(t.deps.pointer.fencedBy);
      t.log.warn('publishing a read snapshot failed; will retry', { error });
      // What it wrote before failing is named by nothing now (its tails get new keys next time):
      // candidates for the collector, which keeps whatever is still in use.
      t.gc.addCandidates([...named]);
      this.markDvDirtyAgain(capture);
      t.clock.after(RETRY.snapshot.firstDelayMs, () => t.post({ type: 'snapshot' }));
      return;
    }
    // Remember where each deletion vector now lives, so the next snapshot can point to it.
    const byKey = new Map<string, (typeof written.manifest.files)[number]>();
    for (const f of written.manifest.files) byKey.set(f.path, f);
    for (const f of state.files.values()) {
      const m = byKey.get(f.objectKey);
      if (m?.deletes && !f.dvDirty) f.dvRef = m.deletes;
    }
    for (const slice of state.slices()) {
      for (const seg of slice.segments) {
        const m = seg.key ? byKey.get(seg.key) : undefined;
        if (m?.deletes && !seg.dvDirty) seg.dvRef = m.deletes;
        const size = written.tailSizes.get(seg);
        if (size !== undefined) seg.sizeBytes = size;
      }
    }
    this.commits.pointerCaughtUp();
    const keys = new Set(snapshotObjectKeys(written.manifest));
    keys.add(written.manifestKey);
    const previous = this.published;
    this.published = {
      lsn: capture.lsn,
      objectKey: written.manifestKey,
      seq: capture.seq,
      stateVersion: capture.stateVersion,
      keys,
    };
    if (previous) t.gc.addCandidates([...previous.keys].filter((k) => !keys.has(k)));
    this.serveWaiters();
    if (again) this.request();
  }

  private markDvDirtyAgain(capture: SnapshotCapture): void {
    const state = this.t.state;
    const blobKeys = new Set(capture.blobs.map((b) => b.fileKey));
    for (const f of state.files.values()) if (blobKeys.has(f.objectKey)) f.dvDirty = true;
    for (const slice of state.slices()) {
      for (const seg of slice.segments) {
        if (seg.key && blobKeys.has(seg.key)) seg.dvDirty = true;
        // A tail that was never written gets a new key next time.
        if (capture.tails.some((tail) => tail.segment === seg)) seg.key = undefined;
      }
    }
  }

  /** Keys the published snapshot and the one being written name (kept from the collector). */
  keys(into: Set<string>): void {
    for (const k of this.inFlightKeys) into.add(k);
    for (const k of this.published?.keys ?? []) into.add(k);
  }
}
