/**
 * An index run: an immutable, hash-sorted list of (key hash → data file id, row position)
 * entries with a blocked Bloom filter in front (all of a key's bits in one 64-byte block, chosen
 * by the top bits of the hash: a lookup touches one cache line, and building it in hash order
 * walks the filter front to back). Runs are built when a file is flushed, merged in the
 * background, persisted to the object store for recovery, and spilled to local disk (only the
 * Bloom filter and a sparse block directory stay in memory) when the index outgrows its budget.
 */

import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { BloomFilter } from './bloom-filter.ts';
import { sortEntries } from './hash-sort.ts';

export const RUN_MAGIC = 0x584c4d49; // "IMLX" little-endian
/** 1: plain Bloom filter (rebuilt from the entries when read); 2: blocked Bloom filter. */
const RUN_VERSION = 2;
const BLOCK_ENTRIES = 512;

interface Spill {
  path: string;
  fd: number;
  /** (hi, lo) of the first entry of each block. */
  directory: Uint32Array;
}

const blockBuf = new Uint32Array(BLOCK_ENTRIES * 4);
const blockBytes = new Uint8Array(blockBuf.buffer);

/** An index run's arrays (see {@link IndexRun.toParts}). */
export interface RunParts {
  count: number;
  hashes: Uint32Array;
  locs: Uint32Array;
  fileIds: Uint32Array;
  bloom: Uint32Array;
}

/**
 * The run of one file built before its id was known (a worker names it file 0): its entries
 * are given `fileId` (in place) and it becomes an IndexRun.
 */
export function runForFile(parts: RunParts, fileId: number): IndexRun {
  for (let i = 0; i < parts.locs.length; i += 2) parts.locs[i] = fileId;
  if (parts.fileIds.length > 0) parts.fileIds[0] = fileId;
  return IndexRun.fromParts(parts);
}

/** The buffers of a run's parts, to transfer them. */
export function runPartsBuffers(p: RunParts): ArrayBuffer[] {
  return [...new Set([p.hashes.buffer, p.locs.buffer, p.fileIds.buffer, p.bloom.buffer] as ArrayBuffer[])];
}

export class IndexRun {
  /** Interleaved [hi, lo] per entry, sorted; undefined once spilled. */
  private hashes: Uint32Array | undefined;
  /** Interleaved [fileId, pos] per entry; undefined once spilled. */
  private locs: Uint32Array | undefined;
  private readonly bloom: BloomFilter;
  private spill: Spill | undefined;
  /** Object-store key once persisted. */
  persistedKey: string | undefined;

  private constructor(
    readonly count: number,
    hashes: Uint32Array,
    locs: Uint32Array,
    readonly fileIds: Uint32Array,
    bloom?: Uint32Array,
  ) {
    this.hashes = hashes;
    this.locs = locs;
    if (bloom) {
      this.bloom = BloomFilter.fromWords(bloom);
    } else {
      this.bloom = BloomFilter.forKeys(count);
      for (let i = 0; i < count; i++) this.bloom.add(hashes[2 * i], hashes[2 * i + 1]);
    }
  }

  /**
   * The run's arrays, for handing to another thread without copying (a worker builds a run,
   * the table's thread takes it with {@link fromParts}). Only for a resident run.
   */
  toParts(): RunParts {
    if (!this.hashes || !this.locs) throw new Error('a spilled index run has no parts in memory');
    return {
      count: this.count,
      hashes: this.hashes,
      locs: this.locs,
      fileIds: this.fileIds,
      bloom: this.bloom.words,
    };
  }

  static fromParts(p: RunParts): IndexRun {
    return new IndexRun(p.count, p.hashes, p.locs, p.fileIds, p.bloom);
  }

  /** The run of one data file: row i's key hash is (his[i], los[i]); its position is i. */
  static forFile(fileId: number, his: Uint32Array, los: Uint32Array): IndexRun {
    const n = his.length;
    const { order, hashes } = sortEntries(his, los);
    const locs = new Uint32Array(2 * n);
    for (let i = 0; i < n; i++) {
      locs[2 * i] = fileId;
      locs[2 * i + 1] = order[i];
    }
    return new IndexRun(n, hashes, locs, n === 0 ? new Uint32Array(0) : Uint32Array.of(fileId));
  }

  /**
   * Merges runs into one, dropping entries `keep` rejects (rows in files that no longer exist, or
   * rows already deleted). Spilled runs are read back block by block.
   */
  static merge(runs: IndexRun[], keep: (fileId: number, pos: number) => boolean): IndexRun {
    const it = IndexRun.mergeSteps(runs, keep);
    for (let r = it.next(); ; r = it.next()) if (r.done) return r.value;
  }

  /**
   * {@link merge} a slice at a time: yields to the event loop every `sliceEntries` entries, so a
   * merge of millions of entries never holds the table's thread for long.
   */
  static async mergeCooperatively(
    runs: IndexRun[],
    keep: (fileId: number, pos: number) => boolean,
    sliceEntries = 1 << 15,
  ): Promise<IndexRun> {
    const it = IndexRun.mergeSteps(runs, keep, sliceEntries);
    for (let r = it.next(); ; r = it.next()) {
      if (r.done) return r.value;
      await yieldToLoop();
    }
  }

  /** The merge, pausing (yielding undefined) every `sliceEntries` entries. */
  private static *mergeSteps(
    runs: IndexRun[],
    keep: (fileId: number, pos: number) => boolean,
    sliceEntries = Number.POSITIVE_INFINITY,
  ): Generator<undefined, IndexRun> {
    const total = runs.reduce((s, r) => s + r.count, 0);
    const hashes = new Uint32Array(2 * total);
    const locs = new Uint32Array(2 * total);
    const cursors = runs.map((r) => r.cursor());
    let n = 0;
    let steps = 0;
    const heads = cursors.map((c) => c.next());
    for (;;) {
      let best = -1;
      for (let k = 0; k < heads.length; k++) {
        const h = heads[k];
        if (!h) continue;
        if (best < 0) {
          best = k;
          continue;
        }
        const b = heads[best]!;
        if (h[0] < b[0] || (h[0] === b[0] && h[1] < b[1])) best = k;
      }
      if (best < 0) break;
      if (++steps % sliceEntries === 0) yield undefined;
      const h = heads[best]!;
      if (keep(h[2], h[3])) {
        hashes[2 * n] = h[0];
        hashes[2 * n + 1] = h[1];
        locs[2 * n] = h[2];
        locs[2 * n + 1] = h[3];
        n++;
      }
      heads[best] = cursors[best].next();
    }
    // What follows is as long as the merge's entries: it pauses too (a 12 M-entry run's filter
    // and copies took ~120 ms at once).
    const outHashes = yield* trimmed(hashes, 2 * n, sliceEntries);
    const outLocs = yield* trimmed(locs, 2 * n, sliceEntries);
    const ids = new Set<number>();
    let last = -1;
    const bloom = BloomFilter.forKeys(n);
    for (let i = 0; i < n; i++) {
      // Entries of one file come in runs: only changes of the id go through the set.
      if (outLocs[2 * i] !== last) {
        last = outLocs[2 * i];
        ids.add(last);
      }
      bloom.add(outHashes[2 * i], outHashes[2 * i + 1]);
      if ((i + 1) % sliceEntries === 0) yield undefined;
    }
    return new IndexRun(n, outHashes, outLocs, Uint32Array.from(ids).sort(), bloom.words);
  }

  /** Iterates entries in hash order as [hi, lo, fileId, pos] (the tuple is reused). */
  cursor(): { next(): [number, number, number, number] | undefined } {
    let i = 0;
    const t: [number, number, number, number] = [0, 0, 0, 0];
    let block: Uint32Array | undefined;
    let blockStart = -1;
    return {
      next: () => {
        if (i >= this.count) return undefined;
        if (this.hashes && this.locs) {
          t[0] = this.hashes[2 * i];
          t[1] = this.hashes[2 * i + 1];
          t[2] = this.locs[2 * i];
          t[3] = this.locs[2 * i + 1];
        } else {
          const b = Math.floor(i / BLOCK_ENTRIES);
          if (blockStart !== b) {
            block = this.readBlock(b).slice();
            blockStart = b;
          }
          const j = i - b * BLOCK_ENTRIES;
          t[0] = block![4 * j];
          t[1] = block![4 * j + 1];
          t[2] = block![4 * j + 2];
          t[3] = block![4 * j + 3];
        }
        i++;
        return t;
      },
    };
  }

  mayContain(hi: number, lo: number): boolean {
    return this.bloom.mayContain(hi, lo);
  }

  /** Calls `cb` for each entry with this hash; stops early when `cb` returns true. */
  find(hi: number, lo: number, cb: (fileId: number, pos: number) => boolean): boolean {
    if (this.count === 0 || !this.mayContain(hi, lo)) return false;
    if (this.hashes && this.locs) return scan(this.hashes, this.locs, 0, this.count, hi, lo, cb);
    const dir = this.spill!.directory;
    const blocks = dir.length / 2;
    // Last block whose first entry is ≤ (hi, lo); equal hashes may straddle into the next block.
    let a = 0;
    let b = blocks - 1;
    while (a < b) {
      const m = (a + b + 1) >>> 1;
      if (dir[2 * m] < hi || (dir[2 * m] === hi && dir[2 * m + 1] < lo)) a = m;
      else b = m - 1;
    }
    for (let blk = a; blk < blocks; blk++) {
      if (dir[2 * blk] > hi || (dir[2 * blk] === hi && dir[2 * blk + 1] > lo)) break;
      const data = this.readBlock(blk);
      const n = Math.min(BLOCK_ENTRIES, this.count - blk * BLOCK_ENTRIES);
      for (let j = 0; j < n; j++) {
        const h = data[4 * j];
        const l = data[4 * j + 1];
        if (h === hi && l === lo) {
          if (cb(data[4 * j + 2], data[4 * j + 3])) return true;
        } else if (h > hi || (h === hi && l > lo)) return false;
      }
    }
    return false;
  }

  private readBlock(blk: number): Uint32Array {
    const s = this.spill!;
    const n = Math.min(BLOCK_ENTRIES, this.count - blk * BLOCK_ENTRIES);
    readSync(s.fd, blockBytes, 0, n * 16, blk * BLOCK_ENTRIES * 16);
    return blockBuf;
  }

  get resident(): boolean {
    return this.hashes !== undefined;
  }

  /** Bytes held in memory. */
  get memoryBytes(): number {
    return (
      this.bloom.byteLength +
      (this.hashes ? this.hashes.byteLength + this.locs!.byteLength : 0) +
      (this.spill?.directory.byteLength ?? 0)
    );
  }

  /** Moves the entries to a local file; keeps the Bloom filter and a block directory in memory. */
  spillTo(path: string): void {
    const it = this.spillSteps(path, () => true);
    for (let r = it.next(); !r.done; r = it.next()) {
      // all at once
    }
  }

  /**
   * {@link spillTo}, yielding to the event loop every 64 blocks (32,768 entries); the run stays
   * resident (and usable) until the file is complete. Abandoned, file removed, once `alive`
   * turns false. Resolves true when the run was spilled.
   */
  async spillCooperatively(path: string, alive: () => boolean): Promise<boolean> {
    const it = this.spillSteps(path, alive);
    for (let r = it.next(); ; r = it.next()) {
      if (r.done) return r.value;
      await yieldToLoop();
    }
  }

  private *spillSteps(path: string, alive: () => boolean): Generator<undefined, boolean> {
    if (!this.hashes || !this.locs || this.spill) return false;
    const fd = openSync(path, 'w+');
    const blocks = Math.ceil(this.count / BLOCK_ENTRIES);
    const directory = new Uint32Array(blocks * 2);
    const buf = new Uint32Array(BLOCK_ENTRIES * 4);
    for (let blk = 0; blk < blocks; blk++) {
      if (blk > 0 && blk % 64 === 0) {
        yield undefined;
        if (!alive() || !this.hashes || !this.locs || this.spill) {
          closeSync(fd);
          rmSync(path, { force: true });
          return false;
        }
      }
      const start = blk * BLOCK_ENTRIES;
      const n = Math.min(BLOCK_ENTRIES, this.count - start);
      for (let j = 0; j < n; j++) {
        buf[4 * j] = this.hashes[2 * (start + j)];
        buf[4 * j + 1] = this.hashes[2 * (start + j) + 1];
        buf[4 * j + 2] = this.locs[2 * (start + j)];
        buf[4 * j + 3] = this.locs[2 * (start + j) + 1];
      }
      directory[2 * blk] = buf[0];
      directory[2 * blk + 1] = buf[1];
      writeSync(fd, new Uint8Array(buf.buffer, 0, n * 16), 0, n * 16, start * 16);
    }
    this.spill = { path, fd, directory };
    this.hashes = undefined;
    this.locs = undefined;
    return true;
  }

  /** Releases the spill file handle (the caller removes the file). */
  close(): void {
    if (this.spill) {
      closeSync(this.spill.fd);
    }
  }

  get spillPath(): string | undefined {
    return this.spill?.path;
  }

  /** Serialized form for the object store: header, file ids, entries, Bloom filter. */
  serialize(): Uint8Array {
    const it = this.serializeSteps();
    for (let r = it.next(); ; r = it.next()) if (r.done) return r.value;
  }

  /** {@link serialize}, yielding to the event loop every 32,768 entries (a commit's runs). */
  async serializeCooperatively(sliceEntries = 1 << 15): Promise<Uint8Array> {
    const it = this.serializeSteps(sliceEntries);
    for (let r = it.next(); ; r = it.next()) {
      if (r.done) return r.value;
      await yieldToLoop();
    }
  }

  private *serializeSteps(sliceEntries = Number.POSITIVE_INFINITY): Generator<undefined, Uint8Array> {
    const headerWords = 4;
    const words = headerWords + this.fileIds.length + this.count * 4 + this.bloom.words.length;
    const out = new Uint32Array(words);
    out[0] = RUN_MAGIC;
    out[1] = RUN_VERSION;
    out[2] = this.count;
    out[3] = this.fileIds.length;
    out.set(this.fileIds, headerWords);
    let at = headerWords + this.fileIds.length;
    // A resident run's arrays never change: they are read in slices even if the run is spilled
    // or released meanwhile. A spilled run is read back at once (its file may go with it).
    const hashes = this.hashes;
    const locs = this.locs;
    if (hashes && locs) {
      for (let i = 0; i < this.count; i++) {
        out[at++] = hashes[2 * i];
        out[at++] = hashes[2 * i + 1];
        out[at++] = locs[2 * i];
        out[at++] = locs[2 * i + 1];
        if ((i + 1) % sliceEntries === 0) yield undefined;
      }
    } else {
      const c = this.cursor();
      for (let e = c.next(); e; e = c.next()) {
        out[at++] = e[0];
        out[at++] = e[1];
        out[at++] = e[2];
        out[at++] = e[3];
      }
    }
    out.set(this.bloom.words, at);
    return new Uint8Array(out.buffer);
  }

  static deserialize(bytes: Uint8Array, name = 'index run'): IndexRun {
    if (bytes.byteLength % 4 !== 0 || bytes.byteLength < 16) throw new Error(`${name}: truncated index run`);
    const words = new Uint32Array(bytes.slice().buffer);
    const version = words[1];
    if (words[0] !== RUN_MAGIC || (version !== 1 && version !== RUN_VERSION))
      throw new Error(`${name}: not an index run (bad magic or version)`);
    const count = words[2];
    const nFiles = words[3];
    const bloomWords = version === 1 ? bloomBitsV1(count) / 32 : BloomFilter.wordsFor(count);
    if (words.length !== 4 + nFiles + count * 4 + bloomWords)
      throw new Error(`${name}: index run has the wrong length`);
    const fileIds = words.slice(4, 4 + nFiles);
    const hashes = new Uint32Array(2 * count);
    const locs = new Uint32Array(2 * count);
    let at = 4 + nFiles;
    for (let i = 0; i < count; i++) {
      hashes[2 * i] = words[at++];
      hashes[2 * i + 1] = words[at++];
      locs[2 * i] = words[at++];
      locs[2 * i + 1] = words[at++];
    }
    // A version-1 run's filter has another layout: it is rebuilt from the entries.
    const bloom = version === RUN_VERSION ? words.slice(at, at + bloomWords) : undefined;
    return new IndexRun(count, hashes, locs, fileIds, bloom);
  }
}

/** Size of a version-1 run's (unblocked) Bloom filter, to check such a run's length. */
function bloomBitsV1(count: number): number {
  let bits = 64;
  while (bits < count * 10) bits *= 2;
  return bits;
}

function scan(
  hashes: Uint32Array,
  locs: Uint32Array,
  from: number,
  to: number,
  hi: number,
  lo: number,
  cb: (fileId: number, pos: number) => boolean,
): boolean {
  let a = from;
  let b = to;
  while (a < b) {
    const m = (a + b) >>> 1;
    const h = hashes[2 * m];
    if (h < hi || (h === hi && hashes[2 * m + 1] < lo)) a = m + 1;
    else b = m;
  }
  for (let i = a; i < to && hashes[2 * i] === hi && hashes[2 * i + 1] === lo; i++) {
    if (cb(locs[2 * i], locs[2 * i + 1])) return true;
  }
  return false;
}

/** The first `words` of `a` (itself when that is all of it), copied a slice at a time. */
function* trimmed(a: Uint32Array, words: number, sliceEntries: number): Generator<undefined, Uint32Array> {
  if (words === a.length) return a;
  const out = new Uint32Array(words);
  const step = Number.isFinite(sliceEntries) ? 8 * sliceEntries : words;
  for (let at = 0; at < words; at += step) {
    out.set(a.subarray(at, Math.min(words, at + step)), at);
    if (at + step < words) yield undefined;
  }
  return out;
}
