/**
 * Tables are spread over writer groups (one ECS service each) by rendezvous hashing of their
 * name: each group scores the name and the highest score owns the table, so going from N to
 * N + 1 groups moves only the tables the new group wins (about 1/(N + 1) of them; the fencing
 * epochs hand each over safely), where a hash modulo N would move almost all. The read
 * functions use the same choice to find the writer that owns a table.
 */
import { fmix } from '../schema/key-hash.ts';

export function groupOf(table: string, groups: number): number {
  if (groups <= 1) return 0;
  const h = fnv1a(table);
  let best = 0;
  let bestScore = -1;
  for (let g = 0; g < groups; g++) {
    const score = fmix(h ^ Math.imul(g + 1, 0x9e3779b9), 0);
    if (score > bestScore) [best, bestScore] = [g, score];
  }
  return best;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** `http://writer-{group}.moonlink.internal:8081` → the owning writer's base URL. */
export function writerUrlFor(template: string, table: string, groups: number): string {
  return template.replace('{group}', String(groupOf(table, groups)));
}
