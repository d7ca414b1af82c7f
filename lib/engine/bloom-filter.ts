/**
 * A blocked Bloom filter over 64-bit key hashes: all of a key's bits fall in one 512-bit block
 * (one cache line) chosen by the top bits of the hash, so a lookup touches one line, and adding
 * keys in hash order walks the filter front to back. About 1 % false positives at 10 bits per key.
 */

const BITS_PER_KEY = 10;
const HASHES = 7;
const BLOCK_BITS = 512;
const BLOCK_WORDS = BLOCK_BITS / 32;

export class BloomFilter {
  /** Blocks in the filter; a hash's block is ⌊hi · blocks / 2³²⌋ (the top bits of hi). */
  private readonly blocks: number;

  private constructor(readonly words: Uint32Array) {
    this.blocks = words.length / BLOCK_WORDS;
  }

  /** An empty filter sized for `keys` keys (a power-of-two size: see {@link wordsFor}). */
  static forKeys(keys: number): BloomFilter {
    return new BloomFilter(new Uint32Array(BloomFilter.wordsFor(keys)));
  }

  /** An empty filter of just enough blocks for `keys` keys. */
  static forKeysExact(keys: number): BloomFilter {
    const blocks = Math.max(1, Math.ceil((keys * BITS_PER_KEY) / BLOCK_BITS));
    return new BloomFilter(new Uint32Array(blocks * BLOCK_WORDS));
  }

  /** A filter from its words (as {@link words} gave them, for `keys` keys). */
  static fromWords(words: Uint32Array): BloomFilter {
    return new BloomFilter(words);
  }

  /** Words of a filter for `keys` keys: a power of two, at least one block. */
  static wordsFor(keys: number): number {
    let bits = BLOCK_BITS;
    while (bits < keys * BITS_PER_KEY) bits *= 2;
    return bits / 32;
  }

  private block(hi: number): number {
    // Exact in doubles (hi < 2³², blocks < 2²¹); for 2^k blocks it is hi >>> (32 − k).
    return Math.floor((hi * this.blocks) / 4294967296) * BLOCK_WORDS;
  }

  // Bits within the block: double hashing on the low word and the low bits of the high word
  // (its top bits already chose the block).
  add(hi: number, lo: number): void {
    const base = this.block(hi);
    const step = hi | 1;
    for (let k = 0; k < HASHES; k++) {
      const bit = (lo + Math.imul(k, step)) & (BLOCK_BITS - 1);
      this.words[base + (bit >>> 5)] |= 1 << (bit & 31);
    }
  }

  mayContain(hi: number, lo: number): boolean {
    const base = this.block(hi);
    const step = hi | 1;
    for (let k = 0; k < HASHES; k++) {
      const bit = (lo + Math.imul(k, step)) & (BLOCK_BITS - 1);
      if ((this.words[base + (bit >>> 5)] & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }

  get byteLength(): number {
    return this.words.byteLength;
  }
}
