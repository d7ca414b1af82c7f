/**
 * Background merges of the file index's runs: when there are too many, a merge runs a slice at
 * a time off the loop's critical path and comes back as `index-merged`. A commit in flight may
 * be persisting the current runs, so a merge neither starts nor is installed during one.
 */

import { asFileId } from '../store/object-keys.ts';
import type { IndexRun } from './index-run.ts';
import type { TableContext } from './table-context.ts';

export class IndexMerges {
  /** Running, or done and waiting for a commit to finish. */
  private merge: 'running' | { inputs: IndexRun[]; merged: IndexRun } | undefined;

  constructor(private readonly t: TableContext) {}

  maybeStart(): void {
    const t = this.t;
    if (t.sched.status === 'committing' || t.stopped) return;
    const index = t.state.index;
    if (this.merge) {
      // A merge that finished during a commit is installed now.
      if (this.merge !== 'running') {
        const { inputs, merged } = this.merge;
        this.merge = undefined;
        index.installMerge(inputs, merged);
        this.maybeStart();
      }
      return;
    }
    // Drop only entries a recovery could never need: rows deleted as of the last Iceberg commit
    // (a later commit's state includes those deletes) and files no longer in the table.
    const merging = index.mergeInBackground((fileId, pos) => {
      const f = t.state.files.get(asFileId(fileId));
      return f !== undefined && !f.committedDeletes.has(pos);
    });
    this.merge = 'running';
    merging.then(
      (done) => t.post({ type: 'index-merged', done }),
      (error) => t.post({ type: 'index-merged', error }),
    );
  }

  done(done: { inputs: IndexRun[]; merged: IndexRun } | undefined, error: unknown): void {
    const t = this.t;
    this.merge = undefined;
    if (error) return t.log.warn('merging index runs failed; will retry', { error });
    if (!done) return;
    if (t.sched.status === 'committing') {
      this.merge = done; // installed once the commit is done
      return;
    }
    t.state.index.installMerge(done.inputs, done.merged);
    this.maybeStart();
  }
}
