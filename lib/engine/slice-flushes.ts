/**
 * Flushes: a frozen MemSlice → Parquet data files (one per partition, sorted as the table
 * is), written off the loop by writeSliceToFile; `flush-done` installs them in the table. A
 * failed flush is tried again under a new key after a back-off (RETRY.flush, never given up:
 * the slice's rows stay readable from tail files meanwhile).
 */

import { dataFileKey, type FileId, type ObjectKey } from '../store/object-keys.ts';
import type { FlushJob } from './flusher.ts';
import { writeSliceToFile } from './flusher.ts';
import type { MemSlice } from './mem-slice.ts';
import type { FlushDone, TableContext } from './table-context.ts';

export class SliceFlushes {
  /** Flushes started and not yet installed (a retry waiting counts). */
  inFlight = 0;

  constructor(private readonly t: TableContext) {}

  /** Starts the flush of every slice the table froze since the last call. */
  startQueued(): void {
    const queue = this.t.state.toFlush;
    while (queue.length > 0) {
      const f = queue.shift();
      if (f) this.start(f.slice, f.rows, f.fileId);
    }
  }

  start(slice: MemSlice, rows: Uint32Array, fileId: FileId): void {
    const t = this.t;
    this.inFlight++;
    const key = dataFileKey(t.tableRoot, fileId, t.newId());
    t.writesInFlight.add(key);
    const extra: string[] = [];
    writeSliceToFile(this.job(slice, rows, fileId, key, extra), t.deps.store, t.deps.pool).then(
      (result) => t.post({ type: 'flush-done', slice, fileId, rows, key, extra, result }),
      (error) => t.post({ type: 'flush-done', slice, fileId, rows, key, extra, error }),
    );
  }

  /**
   * A flush of slice rows: laid out as the table is (one file per partition, sorted), the files
   * after the first under ids allocated as the flush finds its partitions (listed in `extra`,
   * kept from the orphan sweep until installed).
   */
  job(slice: MemSlice, rows: Uint32Array, fileId: FileId, objectKey: ObjectKey, extra: string[]): FlushJob {
    const t = this.t;
    return {
      slice,
      rows,
      fileId,
      objectKey,
      compression: t.options.dataCompression,
      layout: t.state.layout,
      allocate: () => {
        const id = t.state.newFileId();
        const k = dataFileKey(t.tableRoot, id, t.newId());
        t.writesInFlight.add(k);
        extra.push(k);
        return { fileId: id, objectKey: k };
      },
    };
  }

  /** `flush-done`: the files join the table, or the flush is tried again. True when installed. */
  done(e: FlushDone): boolean {
    const t = this.t;
    this.inFlight--;
    // Installed below, or (on failure) left for the orphan sweep: a retry writes a new key.
    t.writesInFlight.delete(e.key);
    for (const k of e.extra ?? []) t.writesInFlight.delete(k);
    if (e.error || !e.result) {
      const delay = t.sched.flushRetry.failed() ?? t.sched.flushRetry.policy.maxDelayMs;
      t.log.warn('flush failed; retrying', { error: e.error, retryInMs: delay });
      this.inFlight++;
      t.clock.after(delay, () => {
        this.inFlight--;
        if (!t.stopped) this.start(e.slice, e.rows, e.fileId);
      });
      return false;
    }
    t.sched.flushRetry.succeeded();
    t.state.installFlushed(e.slice, e.result.files);
    return true;
  }
}
