/**
 * Which manifests of one content type (data or deletes) to merge so a snapshot keeps a bounded
 * number of manifests however many commits come, at a small rewrite cost per commit.
 *
 * Two rules, applied until neither fires:
 * - carry (data manifests): a manifest's tier is floor(log2(live entries)); two manifests below
 *   `targetEntries` in the same tier are merged, like a binary counter's carry. Appending one
 *   manifest per commit then rewrites each entry about once per tier, and the largest manifest
 *   only when the tiers below it fill up, instead of n/maxCount entries on every commit.
 * - count: while there are more than `maxCount`, merge where it costs least: two manifests this
 *   commit writes anyway (new or rewritten), else the smallest kept manifest into the smallest
 *   written one, else the two smallest. Delete manifests use only this rule: their entries are
 *   replaced at random places, so balanced manifests (not one huge one) are cheapest to rewrite.
 */

export interface MergeCandidate {
  /** Live (ADDED or EXISTING) entries: what a merged manifest keeps. */
  liveEntries: number;
  /** Written by this commit anyway (new, or rewritten because an entry left it). */
  written: boolean;
}

export interface MergePolicy {
  maxCount: number;
  targetEntries: number;
  /** Apply the size-tier carry rule (for manifests that mostly grow by appends). */
  carry: boolean;
}

interface Group {
  size: number;
  written: boolean;
  members: number[];
}

function tier(n: number): number {
  return n <= 1 ? 0 : Math.floor(Math.log2(n));
}

/**
 * Groups of candidate indices to merge into one manifest each (every group has at least two
 * members); candidates in no group are kept as they are.
 */
export function planManifestMerges(candidates: MergeCandidate[], policy: MergePolicy): number[][] {
  const limit = Math.max(1, policy.maxCount);
  let groups: Group[] = candidates.map((c, i) => ({ size: c.liveEntries, written: c.written, members: [i] }));
  const merge = (a: Group, b: Group): void => {
    groups = groups.filter((g) => g !== a && g !== b);
    groups.push({
      size: a.size + b.size,
      written: true,
      members: [...a.members, ...b.members].sort((x, y) => x - y),
    });
  };
  for (;;) {
    groups.sort((a, b) => a.size - b.size || a.members[0] - b.members[0]);
    if (policy.carry) {
      let carried = false;
      for (let i = 0; i + 1 < groups.length; i++) {
        if (groups[i + 1].size >= policy.targetEntries) break;
        if (tier(groups[i].size) === tier(groups[i + 1].size)) {
          merge(groups[i], groups[i + 1]);
          carried = true;
          break;
        }
      }
      if (carried) continue;
    }
    if (groups.length <= limit) break;
    const written = groups.filter((g) => g.written);
    const kept = groups.filter((g) => !g.written);
    if (written.length >= 2) merge(written[0], written[1]);
    else if (written.length === 1) merge(written[0], kept[0]);
    else merge(groups[0], groups[1]);
  }
  return groups.filter((g) => g.members.length > 1).map((g) => g.members);
}
