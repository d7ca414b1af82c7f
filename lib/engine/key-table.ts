/**
 * The MemSlice's primary-key map: open addressing over the 64-bit key hash (computed once per
 * operation and shared with the file index). A key is its hash here, as in the file index (see
 * the README's *Index*): no key strings are kept per row. Several times faster than a Map keyed
 * by fresh strings, and no per-entry objects. A slot is three adjacent words (row + 1, hash hi,
 * hash lo), so a probe touches one cache line.
 */

const EMPTY = 0;
const TOMBSTONE = -1;
/** Words per slot: state (row + 1, EMPTY or TOMBSTONE), hi, lo. */
const W = 3;

export class KeyTable {
  private slots: Int32Array;
  private mask: number;
  private live = 0;
  private used = 0;

  constructor(capacity = 1024) {
    let cap = 16;
    while (cap < capacity) cap *= 2;
    this.slots = new Int32Array(cap * W);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.live;
  }

  /** The row holding the key with this hash, or -1. */
  get(hi: number, lo: number): number {
    const slots = this.slots;
    let i = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
    for (;;) {
      const s = slots[i * W];
      if (s === EMPTY) return -1;
      if (s > 0 && slots[i * W + 1] === (hi | 0) && slots[i * W + 2] === (lo | 0)) return s - 1;
      i = (i + 1) & this.mask;
    }
  }

  /** Adds hash → row; the caller guarantees the hash is not present. */
  set(hi: number, lo: number, row: number): void {
    if ((this.used + 1) * 4 > (this.mask + 1) * 3) this.grow();
    const slots = this.slots;
    let i = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
    while (slots[i * W] > 0) i = (i + 1) & this.mask;
    if (slots[i * W] === EMPTY) this.used++;
    slots[i * W] = row + 1;
    slots[i * W + 1] = hi;
    slots[i * W + 2] = lo;
    this.live++;
  }

  delete(hi: number, lo: number): boolean {
    const slots = this.slots;
    let i = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
    for (;;) {
      const s = slots[i * W];
      if (s === EMPTY) return false;
      if (s > 0 && slots[i * W + 1] === (hi | 0) && slots[i * W + 2] === (lo | 0)) {
        slots[i * W] = TOMBSTONE;
        this.live--;
        return true;
      }
      i = (i + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = this.slots;
    const oldCap = this.mask + 1;
    const cap = this.live * 4 > oldCap ? oldCap * 2 : oldCap;
    this.slots = new Int32Array(cap * W);
    this.mask = cap - 1;
    this.used = 0;
    this.live = 0;
    for (let i = 0; i < oldCap; i++) {
      const s = old[i * W];
      if (s > 0) this.set(old[i * W + 1] >>> 0, old[i * W + 2] >>> 0, s - 1);
    }
  }

  get byteSize(): number {
    return this.slots.byteLength;
  }
}
