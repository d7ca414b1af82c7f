/** Writer groups by rendezvous hashing (lib/aws/table-groups.ts): balanced, and stable as groups are added. */
import { describe, expect, it } from 'vitest';
import { groupOf, writerUrlFor } from '../lib/aws/table-groups.ts';

const names = Array.from({ length: 20_000 }, (_, i) => `orders_${i}_${(i * 2654435761) % 997}`);

describe('table groups', () => {
  it('spreads tables evenly over the groups', () => {
    for (const groups of [2, 3, 5, 8]) {
      const counts = new Array(groups).fill(0);
      for (const n of names) counts[groupOf(n, groups)]++;
      const mean = names.length / groups;
      for (const c of counts)
        expect(Math.abs(c - mean) / mean, `${groups} groups: ${counts}`).toBeLessThan(0.06);
    }
    expect(names.every((n) => groupOf(n, 1) === 0)).toBe(true);
  });

  it('moves only about 1/(N+1) of the tables when a group is added, all of them to the new group', () => {
    for (const groups of [1, 2, 4, 7]) {
      let moved = 0;
      for (const n of names) {
        const before = groupOf(n, groups);
        const after = groupOf(n, groups + 1);
        if (before !== after) {
          moved++;
          expect(after).toBe(groups);
        }
      }
      const share = moved / names.length;
      expect(share, `${groups} → ${groups + 1}`).toBeGreaterThan((1 / (groups + 1)) * 0.9);
      expect(share, `${groups} → ${groups + 1}`).toBeLessThan((1 / (groups + 1)) * 1.1);
    }
  });

  it('names the owning writer', () => {
    const g = groupOf('orders', 4);
    expect(writerUrlFor('http://writer-{group}.moonlink.internal:8081', 'orders', 4)).toBe(
      `http://writer-${g}.moonlink.internal:8081`,
    );
  });
});
