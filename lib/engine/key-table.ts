/**
 * The MemSlice's primary-key map: open addressing over the 64-bit key hash (computed once per
 * operation and shared with the file index), checking the key string only on a hash match.
 * Several times faster than a Map keyed by fresh strings, and no per-entry objects.
 */

const EMPTY = 0;
const TOMBSTONE = -1;

export class KeyTable {
  private slots: Int32Array; // row + 1, EMPTY or TOMBSTONE
  private his: Uint32Array;
  private los: Uint32Array;
  private mask: number;
  private live = 0;
  private used = 0;

  constructor(
    private readonly keyOf: (row: number) => string,
    capacity = 1024,
  ) {
    let cap = 16;
    while (cap < capacity) cap *= 2;
    this.slots = new Int32Array(cap);
    this.his = new Uint32Array(cap);
    this.los = new Uint32Array(cap);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.live;
  }

  /** The row holding `key`, or -1. */
  get(key: string, hi: number, lo: number): number {
    let i = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
    for (;;) {
      const s = this.slots[i];
      if (s === EMPTY) return -1;
      if (s > 0 && this.his[i] === hi && this.los[i] === lo && this.keyOf(s - 1) === key) return s - 1;
      i = (i + 1) & this.mask;
    }
  }

  /** Adds key → row; the caller guarantees the key is not present. */
  set(hi: number, lo: number, row: number): void {
    if ((this.used + 1) * 4 > this.slots.length * 3) this.grow();
    let i = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
    while (this.slots[i] > 0) i = (i + 1) & this.mask;
    if (this.slots[i] === EMPTY) this.used++;
    this.slots[i] = row + 1;
    this.his[i] = hi;
    this.los[i] = lo;
    this.live++;
  }

  delete(key: string, hi: number, lo: number): boolean {
    let i = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
    for (;;) {
      const s = this.slots[i];
      if (s === EMPTY) return false;
      if (s > 0 && this.his[i] === hi && this.los[i] === lo && this.keyOf(s - 1) === key) {
        this.slots[i] = TOMBSTONE;
        this.live--;
        return true;
      }
      i = (i + 1) & this.mask;
    }
  }

  private grow(): void {
    const { slots, his, los } = this;
    const cap = this.live * 4 > slots.length ? slots.length * 2 : slots.length;
    this.slots = new Int32Array(cap);
    this.his = new Uint32Array(cap);
    this.los = new Uint32Array(cap);
    this.mask = cap - 1;
    this.used = 0;
    this.live = 0;
    for (let i = 0; i < slots.length; i++) if (slots[i] > 0) this.set(his[i], los[i], slots[i] - 1);
  }

  get byteSize(): number {
    return this.slots.byteLength * 3;
  }
}
