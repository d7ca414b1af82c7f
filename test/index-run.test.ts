import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileIndex } from '../lib/engine/file-index.ts';
import { indexRunFor } from '../lib/engine/flusher.ts';
import { IndexRun, sortByHash } from '../lib/engine/index-run.ts';
import { hash64 } from '../lib/engine/key-hash.ts';

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

  it('merges runs, dropping entries the caller rejects, and spills past its budget', () => {
    const index = new FileIndex({ memoryBudgetBytes: 200_000, spillDir, maxRuns: 3 });
    for (let f = 1; f <= 5; f++) index.add(indexRunFor(f, 10_000, (i) => `f${f}-${i}`));
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
});
