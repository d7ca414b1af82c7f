import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileIndex } from '../lib/engine/file-index.ts';
import { indexRunFor } from '../lib/engine/flusher.ts';
import { sortByHash, sortEntries } from '../lib/engine/hash-sort.ts';
import { IndexRun } from '../lib/engine/index-run.ts';
import { hash64 } from '../lib/schema/key-hash.ts';

const spillDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlidx-'));
afterAll(() => fs.rm(spillDir, { recursive: true, force: true }));

function lookup(index: { find: FileIndex['find'] }, key: string): [number, number][] {
  const [hi, lo] = hash64(key);
  const out: [number, number][] = [];
  index.find(hi, lo, (f, p) => {
    out.push([f, p]);
    return false;
  });
  return out;
}

describe('index runs', () => {
  it('sorts by 64-bit hash', () => {
    const his = Uint32Array.from([3, 1, 3, 0, 1]);
    const los = Uint32Array.from([1, 9, 0, 5, 2]);
    expect([...sortByHash(his, los)]).toEqual([3, 4, 1, 2, 0]);
  });

  it('sorts many hashes, equal high words by low word, keeping equal hashes in input order', () => {
    const n = 50_000;
    const his = new Uint32Array(n);
    const los = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      // Few distinct high words, so most entries tie on hi; some whole hashes repeat. Skewed
      // like this, the sort takes its general (LSD) path.
      his[i] = (Math.imul(i % 97, 2654435761) >>> 0) % 5000;
      los[i] = Math.imul(i % 7919, 40503) >>> 0;
    }
    const order = sortByHash(his, los);
    const expected = Array.from({ length: n }, (_, i) => i).sort(
      (a, b) => his[a] - his[b] || los[a] - los[b] || a - b,
    );
    expect([...order]).toEqual(expected);
  });

  it('sorts uniform hashes of any count like a reference sort (the MSD path), ties stable', () => {
    let x = 0x2545f491;
    const next = (): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x >>> 0;
    };
    for (const n of [0, 1, 2, 33, 1_000, 70_000, 150_000]) {
      const his = new Uint32Array(n);
      const los = new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        // Every 50th entry repeats an earlier hash: equal hashes keep their input order.
        const j = i % 50 === 49 ? Math.floor(i / 2) : -1;
        his[i] = j >= 0 ? his[j] : next();
        los[i] = j >= 0 ? los[j] : next();
      }
      const { order, hashes } = sortEntries(his, los);
      const expected = Array.from({ length: n }, (_, i) => i).sort(
        (a, b) => his[a] - his[b] || los[a] - los[b] || a - b,
      );
      expect([...order]).toEqual(expected);
      expect([...hashes]).toEqual(expected.flatMap((i) => [his[i], los[i]]));
    }
  });

  it('keeps Bloom false positives near 1 % and reads runs written with the version-1 layout', () => {
    const n = 100_000;
    const run = indexRunFor(3, n, (i) => `key-${i}`);
    let falsePositives = 0;
    for (let i = 0; i < n; i++) {
      const [hi, lo] = hash64(`other-${i}`);
      if (run.mayContain(hi, lo)) falsePositives++;
    }
    expect(falsePositives / n).toBeLessThan(0.02);
    // Version 1: same header and entries, then an unblocked filter of the next power of two
    // ≥ 10 bits per key (its content is ignored: the reader rebuilds the filter).
    const v2 = new Uint32Array(run.serialize().slice().buffer);
    const entriesEnd = 4 + 1 + n * 4;
    let v1Bits = 64;
    while (v1Bits < n * 10) v1Bits *= 2;
    const v1 = new Uint32Array(entriesEnd + v1Bits / 32);
    v1.set(v2.subarray(0, entriesEnd));
    v1[1] = 1;
    const old = IndexRun.deserialize(new Uint8Array(v1.buffer));
    for (const i of [0, 77, n - 1]) expect(lookup(old, `key-${i}`)).toEqual([[3, i]]);
    expect(lookup(old, 'other-1')).toEqual([]);
    expect(() => IndexRun.deserialize(new Uint8Array(v1.buffer, 0, v1.byteLength - 4))).toThrow(
      /wrong length/,
    );
  });

  it('finds every key of a run, resident and spilled, and serializes', () => {
    const n = 20_000;
    const run = indexRunFor(7, n, (i) => `k${i}`);
    for (const i of [0, 1, 4999, n - 1]) expect(lookup(run, `k${i}`)).toEqual([[7, i]]);
    expect(lookup(run, 'missing')).toEqual([]);
    const copy = IndexRun.deserialize(run.serialize());
    expect(lookup(copy, 'k123')).toEqual([[7, 123]]);
    run.spillTo(path.join(spillDir, 'a.idx'));
    expect(run.resident).toBe(false);
    for (let i = 0; i < n; i += 997) expect(lookup(run, `k${i}`)).toEqual([[7, i]]);
    expect(lookup(IndexRun.deserialize(run.serialize()), 'k5')).toEqual([[7, 5]]);
    expect(() => IndexRun.deserialize(new Uint8Array(16))).toThrow(/not an index run/);
    run.close();
  });

  it('serializes, merges and spills a slice at a time: the same result as at once, the thread free meanwhile', async () => {
    // Counts event-loop turns taken by others while `work` runs.
    const turnsDuring = async <T>(work: () => Promise<T>): Promise<{ value: T; turns: number }> => {
      let turns = 0;
      let on = true;
      const tick = () => {
        if (!on) return;
        turns++;
        setImmediate(tick);
      };
      setImmediate(tick);
      const value = await work();
      on = false;
      return { value, turns };
    };
    const a = indexRunFor(1, 20_000, (i) => `a${i}`);
    const b = indexRunFor(2, 20_000, (i) => `b${i}`);
    const serialized = await turnsDuring(() => a.serializeCooperatively(1000));
    expect(serialized.turns).toBeGreaterThanOrEqual(10);
    expect(serialized.value).toEqual(a.serialize());
    const keep = (fileId: number, pos: number) => !(fileId === 2 && pos % 3 === 0);
    const merged = await turnsDuring(() => IndexRun.mergeCooperatively([a, b], keep, 1000));
    expect(merged.turns).toBeGreaterThanOrEqual(40);
    expect(merged.value.serialize()).toEqual(IndexRun.merge([a, b], keep).serialize());
    expect([...merged.value.fileIds]).toEqual([1, 2]);
    // Spilled in slices, and usable throughout; abandoned (its file removed) when the run goes.
    const c = indexRunFor(3, 200_000, (i) => `c${i}`);
    const file = path.join(spillDir, 'coop.idx');
    let checked = 0;
    const spill = c.spillCooperatively(file, () => true);
    while (c.resident) {
      expect(lookup(c, `c${checked * 97}`)).toEqual([[3, checked * 97]]);
      checked++;
      await new Promise((r) => setImmediate(r));
    }
    expect(await spill).toBe(true);
    expect(checked).toBeGreaterThanOrEqual(3);
    expect(lookup(c, 'c199999')).toEqual([[3, 199_999]]);
    c.close();
    const gone = path.join(spillDir, 'gone.idx');
    let alive = true;
    const d = indexRunFor(4, 200_000, (i) => `d${i}`);
    const abandoned = d.spillCooperatively(gone, () => alive);
    alive = false;
    expect(await abandoned).toBe(false);
    expect(d.resident).toBe(true);
    await expect(fs.stat(gone)).rejects.toThrow(/ENOENT/);
  });

  it('merges runs, dropping entries the caller rejects, and spills past its budget', async () => {
    const index = new FileIndex({ memoryBudgetBytes: 200_000, spillDir, maxRuns: 3 });
    for (let f = 1; f <= 5; f++) index.add(indexRunFor(f, 10_000, (i) => `f${f}-${i}`));
    // Spills run in the background, a slice at a time.
    await index.spilled();
    expect(index.memoryBytes).toBeLessThanOrEqual(200_000 + 50_000);
    expect(index.allRuns().some((r) => !r.resident)).toBe(true);
    // Upsert of a key: a newer run points to file 9; the old entry is stale.
    index.add(indexRunFor(9, 1, () => 'f1-5'));
    expect(lookup(index, 'f1-5')).toEqual([
      [9, 0],
      [1, 5],
    ]);
    while (index.mergeNow((fileId, pos) => !(fileId === 1 && pos === 5) && fileId !== 3)) {
      // merge until few runs remain
    }
    expect(index.runCount).toBeLessThanOrEqual(3);
    expect(lookup(index, 'f1-5')).toEqual([[9, 0]]);
    expect(lookup(index, 'f3-1')).toEqual([]);
    expect(lookup(index, 'f5-9999')).toEqual([[5, 9999]]);
    expect(index.entryCount).toBe(40_000);
    index.clear();
  });

  it('keeps one filter over every run: all keys found as it is rebuilt larger, few false positives', async () => {
    const index = new FileIndex({ memoryBudgetBytes: 1 << 30, spillDir, maxRuns: 100 });
    for (let f = 1; f <= 20; f++) index.add(indexRunFor(f, 10_000, (i) => `g${f}-${i}`));
    // Right away (the filter takes new runs' keys in the background) and once it has.
    for (const when of ['at once', 'filtered']) {
      if (when === 'filtered') await index.filtered();
      for (let f = 1; f <= 20; f++)
        for (let i = 0; i < 10_000; i += 101) expect(lookup(index, `g${f}-${i}`), when).toEqual([[f, i]]);
    }
    // A key no run holds: the index-wide filter answers for all 20 runs at once, rarely wrong.
    let maybe = 0;
    for (let i = 0; i < 20_000; i++) {
      const [hi, lo] = hash64(`absent-${i}`);
      expect(index.find(hi, lo, () => true)).toBe(false);
      if (index.mayContain(hi, lo)) maybe++;
    }
    expect(maybe / 20_000).toBeLessThan(0.03);
    index.clear();
    expect(lookup(index, 'g1-0')).toEqual([]);
  });

  it('a run dropped while the filter is rebuilt is skipped, not read from its closed spill file', async () => {
    // Spilled runs (a tiny memory budget), so reading a dropped run's keys would read a closed
    // file descriptor (EBADF, an uncaught error that ended the service before this was fixed).
    const index = new FileIndex({ memoryBudgetBytes: 1, spillDir, maxRuns: 100 });
    for (let f = 1; f <= 5; f++) index.add(indexRunFor(f, 70_000, (i) => `h${f}-${i}`));
    await index.filtered();
    await index.spilled();
    expect(index.allRuns().every((r) => !r.resident)).toBe(true);
    // A run of as many keys again: the filter is rebuilt larger over all six runs, a slice at a
    // time; file 5 goes while the rebuild still reads file 1.
    index.add(indexRunFor(6, 350_000, (i) => `h6-${i}`));
    await new Promise((r) => setImmediate(r));
    expect(index.dropDeadRuns((fileId) => fileId !== 5)).toBe(70_000);
    await index.filtered();
    expect(index.filterFailures).toBe(0);
    await index.spilled();
    expect(index.spillFailures).toBe(0);
    expect(index.allRuns().every((r) => !r.resident)).toBe(true);
    for (let f = 1; f <= 4; f++)
      for (let i = 0; i < 70_000; i += 997) expect(lookup(index, `h${f}-${i}`)).toEqual([[f, i]]);
    expect(lookup(index, 'h6-349999')).toEqual([[6, 349_999]]);
    expect(lookup(index, 'h5-0')).toEqual([]);
    index.clear();
  });
});
