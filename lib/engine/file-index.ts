/**
 * The index of flushed files: key hash → (file id, row position), as a set of {@link IndexRun}s.
 * Lookups ask every run (newest first) and let the caller skip entries that are stale (the row
 * was deleted, or its file compacted away). Memory is bounded: past `memoryBudgetBytes`, the
 * largest resident runs are spilled to local disk and read back by block on lookup.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { BloomFilter } from './bloom-filter.ts';
import { IndexRun } from './index-run.ts';

export interface FileIndexOptions {
  /** Bytes of index entries kept in memory before runs spill to disk. */
  memoryBudgetBytes: number;
  /** Local folder for spilled runs (created by the caller). */
  spillDir: string;
  /** More runs than this are merged. */
  maxRuns: number;
}

/** Key hashes of a file's rows by position; `has[pos]` is 1 where the index holds the row. */
export interface RowHashes {
  his: Uint32Array;
  los: Uint32Array;
  has: Uint8Array;
}

let spillSeq = 0;

export class FileIndex {
  private runs: IndexRun[] = [];
  /**
   * One filter over the keys of every run, so a key no run holds (every insert of a new key)
   * costs one probe instead of one per run. Runs only ever lose entries (merges drop stale ones),
   * so it stays a superset of their keys; once more keys were added than it was sized for, it is
   * rebuilt from the runs at 1.5 × their entries.
   */
  private filter = BloomFilter.forKeysExact(0);
  private filterCapacity = 0;
  private filterKeys = 0;
  /**
   * Runs whose keys are not in `filter` yet: a lookup asks their own filters too. Their keys go
   * into it (or into a rebuilt one) in the background, a slice at a time, never holding the
   * table's thread for long.
   */
  private readonly unfiltered = new Set<IndexRun>();
  private rebuildWanted = false;
  private filtering = false;
  /** Bumped by clear(): background work for an older generation stops. */
  private generation = 0;
  /** Runs a background merge is reading (not dropped meanwhile). */
  private readonly merging = new Set<IndexRun>();

  constructor(private readonly options: FileIndexOptions) {}

  get runCount(): number {
    return this.runs.length;
  }

  allRuns(): readonly IndexRun[] {
    return this.runs;
  }

  get entryCount(): number {
    return this.runs.reduce((s, r) => s + r.count, 0);
  }

  /** The runs and the filter, and a background merge's output as it is built (about its inputs' size). */
  get memoryBytes(): number {
    return this.runs.reduce((s, r) => s + r.memoryBytes, this.filter.byteLength + this.mergeOutputBytes);
  }

  /** Background filter passes that failed (the index stays correct; see startFiltering). */
  filterFailures = 0;
  lastFilterError: Error | undefined;

  /** What a background merge in flight is building (counted from its inputs' size). */
  private mergeOutputBytes = 0;

  add(run: IndexRun): void {
    this.runs.push(run);
    this.unfiltered.add(run);
    if (this.filterKeys + run.count > this.filterCapacity) this.rebuildWanted = true;
    this.startFiltering();
    this.enforceBudget();
  }

  private startFiltering(): void {
    if (this.filtering) return;
    this.filtering = true;
    // A failure leaves the filter as it was (it is only replaced once complete) and the runs
    // not yet in it asked by their own filters: lookups stay right; the next run retries.
    this.filterInBackground()
      .catch((e) => {
        this.filterFailures++;
        this.lastFilterError = e as Error;
      })
      .finally(() => {
        this.filtering = false;
      });
  }

  /**
   * Puts unfiltered runs' keys into the filter, or rebuilds it at 1.5 × the entries once more
   * keys went in than it was sized for. A run dropped meanwhile is skipped (the filter only
   * needs to be a superset of the live runs' keys).
   */
  private async filterInBackground(): Promise<void> {
    const gen = this.generation;
    const current = () => gen === this.generation;
    while (current() && (this.rebuildWanted || this.unfiltered.size > 0)) {
      if (this.rebuildWanted) {
        this.rebuildWanted = false;
        const runs = [...this.runs];
        const keys = runs.reduce((n, r) => n + r.count, 0);
        const capacity = Math.max(1 << 16, Math.ceil(keys * 1.5));
        const filter = BloomFilter.forKeysExact(capacity);
        for (const r of runs) await addKeysSliced(filter, r, () => current() && this.runs.includes(r));
        if (!current()) return;
        this.filter = filter;
        this.filterCapacity = capacity;
        this.filterKeys = keys;
        for (const r of runs) this.unfiltered.delete(r);
        continue;
      }
      const r = this.unfiltered.values().next().value as IndexRun;
      await addKeysSliced(this.filter, r, () => current() && this.runs.includes(r));
      if (!current()) return;
      this.unfiltered.delete(r);
      this.filterKeys += r.count;
      if (this.filterKeys > this.filterCapacity) this.rebuildWanted = true;
    }
  }

  /** Resolves once every run's keys are in the filter (tests). */
  async filtered(): Promise<void> {
    while (this.filtering || this.unfiltered.size > 0) await new Promise((r) => setImmediate(r));
  }

  /** False when no run holds the hash (the index-wide filter; true may be a false positive). */
  mayContain(hi: number, lo: number): boolean {
    if (this.filter.mayContain(hi, lo)) return true;
    for (const r of this.unfiltered) if (r.mayContain(hi, lo)) return true;
    return false;
  }

  /** Visits candidate locations for a hash, newest run first, until `cb` returns true. */
  find(hi: number, lo: number, cb: (fileId: number, pos: number) => boolean): boolean {
    if (!this.mayContain(hi, lo)) return false;
    for (let i = this.runs.length - 1; i >= 0; i--) {
      if (this.runs[i].find(hi, lo, cb)) return true;
    }
    return false;
  }

  /**
   * The key hash of every indexed row of the given files (file id → row count), by position,
   * with `has` marking the positions found. Compaction takes its outputs' hashes from here
   * instead of reading and hashing every key again.
   */
  async rowHashes(files: Map<number, number>): Promise<Map<number, RowHashes>> {
    const out = new Map<number, RowHashes>();
    for (const [fileId, rows] of files) {
      out.set(fileId, { his: new Uint32Array(rows), los: new Uint32Array(rows), has: new Uint8Array(rows) });
    }
    const gen = this.generation;
    // A slice at a time: the runs of big inputs hold millions of entries. A run is not dropped
    // while it is read (merging), and reading stops if the index is cleared.
    for (const run of this.runs.filter((r) => r.fileIds.some((id) => files.has(id)))) {
      this.merging.add(run);
      try {
        const c = run.cursor();
        let n = 0;
        for (let e = c.next(); e; e = c.next()) {
          const h = out.get(e[2]);
          if (h && e[3] < h.has.length) {
            h.his[e[3]] = e[0];
            h.los[e[3]] = e[1];
            h.has[e[3]] = 1;
          }
          if (++n % 32768 === 0) {
            await new Promise((r) => setImmediate(r));
            if (gen !== this.generation || !this.runs.includes(run)) break;
          }
        }
      } finally {
        this.merging.delete(run);
      }
    }
    return out;
  }

  /** Runs that should be merged now (the smaller half once there are too many), or undefined. */
  mergeCandidates(): IndexRun[] | undefined {
    if (this.runs.length <= this.options.maxRuns) return undefined;
    const bySize = [...this.runs].sort((a, b) => a.count - b.count);
    return bySize.slice(0, Math.max(2, Math.ceil(this.runs.length / 2)));
  }

  /** Merges the candidate runs now, dropping entries `keep` rejects. */
  mergeNow(keep: (fileId: number, pos: number) => boolean): boolean {
    const inputs = this.mergeCandidates();
    if (!inputs) return false;
    this.replace(inputs, IndexRun.merge(inputs, keep));
    return true;
  }

  /**
   * Merges the candidate runs a slice at a time (the thread stays free meanwhile), dropping
   * entries `keep` rejects; the caller installs the result with {@link installMerge}.
   */
  async mergeInBackground(
    keep: (fileId: number, pos: number) => boolean,
  ): Promise<{ inputs: IndexRun[]; merged: IndexRun } | undefined> {
    const inputs = this.mergeCandidates();
    if (!inputs) return undefined;
    for (const r of inputs) this.merging.add(r);
    const bytes = inputs.reduce((n, r) => n + r.memoryBytes, 0);
    this.mergeOutputBytes += bytes;
    try {
      return { inputs, merged: await IndexRun.mergeCooperatively(inputs, keep) };
    } finally {
      this.mergeOutputBytes -= bytes;
      for (const r of inputs) this.merging.delete(r);
    }
  }

  /** Installs a background merge, unless its inputs changed meanwhile (then it is dropped). */
  installMerge(inputs: IndexRun[], merged: IndexRun): boolean {
    if (!inputs.every((r) => this.runs.includes(r))) return false;
    this.replace(inputs, merged);
    return true;
  }

  /** Replaces runs by one merged run (placed where the newest input was). */
  replace(inputs: IndexRun[], merged: IndexRun): void {
    const set = new Set(inputs);
    let at = -1;
    this.runs.forEach((r, i) => {
      if (set.has(r)) at = i;
    });
    const kept = this.runs.filter((r) => !set.has(r));
    const insertAt = this.runs.slice(0, at + 1).filter((r) => !set.has(r)).length;
    kept.splice(insertAt, 0, merged);
    this.runs = kept;
    // The merged run's keys are its inputs'; those not yet in the filter still are not. While
    // the filter is being rebuilt, the rebuild skips runs replaced meanwhile: the merged run's
    // keys must then go in on their own too.
    if (this.filtering || inputs.some((r) => this.unfiltered.has(r))) {
      this.unfiltered.add(merged);
      this.startFiltering();
    }
    for (const r of inputs) {
      this.unfiltered.delete(r);
      release(r);
    }
    this.enforceBudget();
  }

  /**
   * Drops the runs whose files are all gone (compacted away): their entries can never be
   * needed again. Runs that also cover live files keep theirs until a merge filters them.
   * The filter over all runs keeps their keys (false positives only) until it is rebuilt.
   */
  dropDeadRuns(isLive: (fileId: number) => boolean): number {
    const dead = this.runs.filter((r) => !this.merging.has(r) && !r.fileIds.some(isLive));
    if (dead.length === 0) return 0;
    const set = new Set(dead);
    this.runs = this.runs.filter((r) => !set.has(r));
    for (const r of dead) {
      this.unfiltered.delete(r);
      release(r);
    }
    return dead.reduce((n, r) => n + r.count, 0);
  }

  /** Drops every run (table dropped or reloaded). */
  clear(): void {
    this.generation++;
    this.unfiltered.clear();
    this.rebuildWanted = false;
    for (const r of this.runs) release(r);
    this.runs = [];
    this.filter = BloomFilter.forKeysExact(0);
    this.filterCapacity = 0;
    this.filterKeys = 0;
  }

  /** Background spills that failed (the run stays in memory; the next add tries again). */
  spillFailures = 0;
  lastSpillError: Error | undefined;
  private spilling = false;

  /**
   * Over budget: the largest resident runs move to local disk, in the background and a slice at
   * a time (writing a 12 M-entry run at once held the table's thread ~230 ms); a run stays
   * usable in memory until its file is complete.
   */
  private enforceBudget(): void {
    if (this.spilling || this.memoryBytes <= this.options.memoryBudgetBytes) return;
    this.spilling = true;
    this.spillInBackground()
      .catch((e) => {
        this.spillFailures++;
        this.lastSpillError = e as Error;
      })
      .finally(() => {
        this.spilling = false;
      });
  }

  private async spillInBackground(): Promise<void> {
    const gen = this.generation;
    while (gen === this.generation && this.memoryBytes > this.options.memoryBudgetBytes) {
      const r = this.runs.filter((x) => x.resident).sort((a, b) => b.count - a.count)[0];
      if (!r) return;
      await r.spillCooperatively(
        path.join(this.options.spillDir, `run-${process.pid}-${++spillSeq}.idx`),
        () => gen === this.generation && this.runs.includes(r),
      );
    }
  }

  /** Resolves once no spill is under way (tests). */
  async spilled(): Promise<void> {
    while (this.spilling) await new Promise((r) => setImmediate(r));
  }
}

/** Adds a run's keys to a filter, yielding every 32,768 entries; stops when `alive` turns false. */
async function addKeysSliced(filter: BloomFilter, run: IndexRun, alive: () => boolean): Promise<void> {
  // A run dropped (and its spill file closed) while an earlier run was being read is skipped.
  if (!alive()) return;
  const c = run.cursor();
  let n = 0;
  for (let e = c.next(); e; e = c.next()) {
    filter.add(e[0], e[1]);
    if (++n % 32768 === 0) {
      await new Promise((r) => setImmediate(r));
      if (!alive()) return;
    }
  }
}

function release(r: IndexRun): void {
  r.close();
  const p = r.spillPath;
  if (p) rmSync(p, { force: true });
}
