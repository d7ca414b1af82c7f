/**
 * Which objects the retained snapshots need, kept up to date per commit at the cost of the
 * commit's changes rather than of the table's size.
 *
 * Snapshots form a chain and retention keeps a suffix of it (the newest ones). A file F added
 * by snapshot A and deleted by snapshot D is live in A … D-1, so it is needed exactly while
 * D-1 is retained: when D becomes the oldest retained snapshot (or expires), F is obsolete.
 * The index counts, per object key, the "contents" (a data file, a delete file, or one deletion
 * vector blob of a Puffin file) that are live in some retained snapshot, and remembers for each
 * retained snapshot the contents it deleted; moving the oldest retained snapshot forward
 * releases those. Manifests and manifest lists are counted per retained snapshot listing them.
 */

export interface Content {
  /** Identity of the content: its file key, plus `#offset` for a deletion vector blob. */
  id: string;
  /** Store key of the file holding it. */
  key: string;
}

export interface IndexedSnapshot {
  id: number;
  listKey: string;
  manifestKeys: readonly string[];
  /** Contents first added by this snapshot. */
  added: readonly Content[];
  /** Contents this snapshot deleted (live in its parent). */
  deleted: readonly Content[];
}

interface Tracked {
  id: number;
  listKey: string;
  manifestKeys: readonly string[];
  /** Deleted contents not yet released (released when this snapshot becomes the oldest). */
  pending: readonly Content[];
}

export class ReferenceIndex {
  /** Retained snapshots, oldest first. */
  private chain: Tracked[] = [];
  private readonly contentRefs = new Map<string, number>();
  private readonly fileRefs = new Map<string, number>();
  private readonly manifestRefs = new Map<string, number>();

  /**
   * An index of retained snapshots (oldest first), given every content live in any of them
   * (each once) and, per snapshot, what it added and deleted.
   */
  static build(snapshots: readonly IndexedSnapshot[], liveContents: Iterable<Content>): ReferenceIndex {
    const index = new ReferenceIndex();
    for (const c of liveContents) index.retain(c);
    snapshots.forEach((s, i) => {
      index.chain.push({
        id: s.id,
        listKey: s.listKey,
        manifestKeys: s.manifestKeys,
        // The oldest snapshot's deletions were live only in snapshots that are gone.
        pending: i === 0 ? [] : s.deleted.filter((c) => index.contentRefs.has(c.id)),
      });
      for (const m of s.manifestKeys) index.manifestRefs.set(m, (index.manifestRefs.get(m) ?? 0) + 1);
    });
    return index;
  }

  private retain(c: Content): void {
    if (this.contentRefs.has(c.id)) return;
    this.contentRefs.set(c.id, 1);
    this.fileRefs.set(c.key, (this.fileRefs.get(c.key) ?? 0) + 1);
  }

  /** Releases a content; returns its file key if no retained content is in that file any more. */
  private release(c: Content): string | undefined {
    if (!this.contentRefs.delete(c.id)) return undefined;
    const n = (this.fileRefs.get(c.key) ?? 1) - 1;
    if (n > 0) {
      this.fileRefs.set(c.key, n);
      return undefined;
    }
    this.fileRefs.delete(c.key);
    return c.key;
  }

  hasManifest(key: string): boolean {
    return this.manifestRefs.has(key);
  }

  /** Appends a new snapshot (the child of the newest one). */
  add(s: IndexedSnapshot): void {
    for (const c of s.added) this.retain(c);
    for (const m of s.manifestKeys) this.manifestRefs.set(m, (this.manifestRefs.get(m) ?? 0) + 1);
    this.chain.push({ id: s.id, listKey: s.listKey, manifestKeys: s.manifestKeys, pending: s.deleted });
    if (this.chain.length === 1) this.releasePending(this.chain[0], []);
  }

  private releasePending(s: Tracked, out: string[]): void {
    for (const c of s.pending) {
      const k = this.release(c);
      if (k !== undefined) out.push(k);
    }
    s.pending = [];
  }

  /**
   * Keeps only the `retained` snapshots, which must be the newest ones; returns the keys no
   * retained snapshot needs any more.
   */
  expire(retained: ReadonlySet<number>): string[] {
    const cut = this.chain.findIndex((s) => retained.has(s.id));
    const keepFrom = cut < 0 ? this.chain.length : cut;
    if (this.chain.slice(keepFrom).some((s) => !retained.has(s.id))) {
      throw new Error('snapshot retention must keep the newest snapshots');
    }
    if (keepFrom === 0) return [];
    const out: string[] = [];
    const gone = this.chain.slice(0, keepFrom);
    this.chain = this.chain.slice(keepFrom);
    for (const s of gone) {
      this.releasePending(s, out);
      out.push(s.listKey);
      for (const m of s.manifestKeys) {
        const n = (this.manifestRefs.get(m) ?? 1) - 1;
        if (n > 0) this.manifestRefs.set(m, n);
        else {
          this.manifestRefs.delete(m);
          out.push(m);
        }
      }
    }
    if (this.chain.length > 0) this.releasePending(this.chain[0], out);
    return out;
  }

  /** Every key a retained snapshot needs (data, delete, manifest and manifest list files). */
  keys(): Set<string> {
    const out = new Set<string>(this.fileRefs.keys());
    for (const k of this.manifestRefs.keys()) out.add(k);
    for (const s of this.chain) out.add(s.listKey);
    return out;
  }
}
