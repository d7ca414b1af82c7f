/**
 * The one layering rule (README "Code map"): every import of lib/ and functions/ points down or
 * across, never up —
 *   util, lsn < schema < columns, txn < store, catalog, log, iceberg, parquet < engine, read
 *   < table administration < sources < composition roots (lib/embedded, lib/aws, lib/main.ts,
 *   lib/config.ts, functions/).
 * `read` sits with the engine: it reads the snapshots the engine publishes. The Parquet worker
 * pool runs the engine's jobs without importing them: the engine registers them
 * (lib/engine/worker-jobs.ts). An exception would be listed with its reason; one that no longer
 * exists fails too, so the list only shrinks.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const RANKS: [RegExp, number][] = [
  [/^lib\/(util\/|lsn\.ts$)/, 0],
  [/^lib\/schema\//, 1],
  [/^lib\/(columns|txn)\//, 2],
  [/^lib\/(store|catalog|log|iceberg|parquet)\//, 3],
  [/^lib\/(engine|read)\//, 4],
  [/^lib\/(table-admin|namespace-admin)\.ts$/, 5],
  [/^lib\/sources\//, 6],
  [/^(lib\/(embedded|aws)\/|lib\/(main|config)\.ts$|functions\/)/, 7],
];

/** Upward imports not yet undone, and why (none left; an entry here needs its reason). */
const EXCEPTIONS: Record<string, string> = {};

function rank(file: string): number | undefined {
  return RANKS.find(([re]) => re.test(file))?.[1];
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.posix.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(ts|mts|mjs)$/.test(e.name) && !e.name.endsWith('.d.mts') ? [p] : [];
  });
}

describe('layers', () => {
  it('every import points down or across', () => {
    const upward: string[] = [];
    const unranked: string[] = [];
    for (const file of [...sources('lib'), ...sources('functions')]) {
      const from = rank(file);
      if (from === undefined) unranked.push(file);
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^\s*(?:import|export)\b[^'";]*?\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]/gm)) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]));
        const to = rank(target);
        if (from !== undefined && to !== undefined && to > from) upward.push(`${file} -> ${target}`);
      }
    }
    expect(unranked).toEqual([]);
    expect(upward.filter((e) => !(e in EXCEPTIONS))).toEqual([]);
    expect(Object.keys(EXCEPTIONS).filter((e) => !upward.includes(e))).toEqual([]);
  });
});
