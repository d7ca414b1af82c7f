/**
 * Metadata stays bounded under many small commits: each commit adds one small data file and
 * changes deletes (the previous commit's file and a random older one). After N commits every
 * snapshot lists at most maxManifests manifests, the metadata JSON stays the same size, only
 * keepSnapshots snapshots are retained, and — with each commit's obsolete keys deleted right
 * away — the store holds exactly what the table references and the table still reads back.
 *
 * N is 10,000 for v3 (about 20 s here) and 1,000 for v2, whose Parquet delete files make a
 * commit about twice as slow; `npx tsx bench/iceberg-metadata.ts 10000 2` runs v2 at 10,000.
 * ICEBERG_BOUNDED_COMMITS overrides both.
 */
import { describe, expect, it } from 'vitest';
import { runWorkload } from '../bench/iceberg-metadata.ts';
import { planManifestMerges } from '../lib/iceberg/manifest-merge.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { MemoryObjectStore } from '../lib/store/memory-object-store.ts';

const override = Number(process.env.ICEBERG_BOUNDED_COMMITS ?? 0);

describe('manifest merge planning', () => {
  it('appends like a binary counter and never exceeds the limit', () => {
    let sizes: number[] = [];
    let rewritten = 0;
    for (let i = 0; i < 5000; i++) {
      const candidates = [
        { liveEntries: 1, written: true },
        ...sizes.map((s) => ({ liveEntries: s, written: false })),
      ];
      const plan = planManifestMerges(candidates, { maxCount: 6, targetEntries: 1 << 20, carry: true });
      const merged = new Set(plan.flat());
      for (const g of plan) rewritten += g.reduce((n, j) => n + candidates[j].liveEntries, 0);
      sizes = [
        ...plan.map((g) => g.reduce((n, j) => n + candidates[j].liveEntries, 0)),
        ...candidates.filter((_, j) => !merged.has(j)).map((c) => c.liveEntries),
      ];
      expect(sizes.length).toBeLessThanOrEqual(6);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(i + 1);
    }
    // Far below rewriting n/6 entries per commit (about 2.1M here).
    expect(rewritten / 5000).toBeLessThan(100);
  });

  it('merges manifests written anyway before rewriting kept ones', () => {
    const plan = planManifestMerges(
      [
        { liveEntries: 2, written: true },
        { liveEntries: 500, written: true },
        { liveEntries: 3, written: false },
        { liveEntries: 400, written: false },
      ],
      { maxCount: 3, targetEntries: 1 << 20, carry: false },
    );
    expect(plan).toEqual([[0, 1]]);
  });
});

for (const [formatVersion, defaultCommits] of [
  [3, 10_000],
  [2, 1_000],
] as const) {
  const commits = override || defaultCommits;
  describe(`bounded metadata, format v${formatVersion}`, () => {
    it(`${commits} commits keep manifests, snapshots and metadata JSON bounded`, async () => {
      const store = new MemoryObjectStore();
      const pool = new ParquetWorkerPool(1);
      try {
        const { report, table, dataKeys, deletes } = await runWorkload({
          commits,
          formatVersion,
          store,
          pool,
          maxManifests: 8,
          keepSnapshots: 20,
        });
        console.log(`bounded metadata v${formatVersion}: ${JSON.stringify(report)}`);
        expect(report.maxManifestsPerSnapshot).toBeLessThanOrEqual(8);
        expect(report.snapshotsRetained).toBe(20);
        expect(report.liveDataFiles).toBe(commits);
        expect(report.maxMetadataJsonBytes).toBeLessThan(40_000);
        // The metadata file does not grow with the number of commits.
        const sizes = Object.values(report.metadataJsonBytesAt);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThan(1_000);

        // Each commit's obsolete keys were deleted at once: the store holds exactly what the
        // table references, nothing it needs is missing, and it reads back in full.
        const referenced = await table.referencedKeys();
        const stored = new Set<string>();
        for await (const o of store.list('tables/')) stored.add(o.key);
        expect([...stored].filter((k) => !referenced.has(k))).toEqual([]);
        expect([...referenced].filter((k) => !stored.has(k))).toEqual([]);
        const state = await table.currentState();
        expect(state.dataFiles.map((f) => f.key).sort()).toEqual([...dataKeys].sort());
        expect(state.deletes.size).toBe(deletes.size);
        for (const [k, bm] of deletes) expect(state.deletes.get(k)?.toArray(), k).toEqual(bm.toArray());
        const list = await table.liveEntries();
        expect(list.length).toBe(commits + deletes.size);
      } finally {
        await pool.close();
      }
    }, 300_000);
  });
}
