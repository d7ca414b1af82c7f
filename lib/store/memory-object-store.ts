/** An object store in memory: for tests and deterministic simulations. */
import {
  assertSafeKey,
  NotFoundError,
  type ObjectInfo,
  type ObjectStore,
  PreconditionFailedError,
  type PutOptions,
} from './object-store.ts';

export class MemoryObjectStore implements ObjectStore {
  readonly description = 'memory';
  private readonly objects = new Map<string, { body: Uint8Array; lastModified: Date }>();

  constructor(private readonly locationBase = 'memory://store/') {}

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<void> {
    assertSafeKey(key);
    if (options.ifNoneMatch && this.objects.has(key)) throw new PreconditionFailedError(key);
    this.objects.set(key, { body: body.slice(), lastModified: new Date() });
  }

  async get(key: string): Promise<Uint8Array> {
    const o = this.objects.get(key);
    if (!o) throw new NotFoundError(key);
    return o.body.slice();
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    const o = this.objects.get(key);
    if (!o) throw new NotFoundError(key);
    return o.body.slice(offset, offset + length);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const o = this.objects.get(key);
    return o ? { key, size: o.body.length, lastModified: o.lastModified } : undefined;
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }

  async deleteMany(keys: string[]): Promise<void> {
    for (const k of keys) this.objects.delete(k);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    for (const key of keys) {
      const o = this.objects.get(key);
      if (o) yield { key, size: o.body.length, lastModified: o.lastModified };
    }
  }

  uri(key: string): string {
    return this.locationBase + key;
  }

  keyFromUri(uri: string): string | undefined {
    return uri.startsWith(this.locationBase) ? uri.slice(this.locationBase.length) : undefined;
  }

  async readUrl(key: string): Promise<string> {
    return this.uri(key);
  }

  /** Number of objects (tests). */
  get size(): number {
    return this.objects.size;
  }

  keys(): string[] {
    return [...this.objects.keys()].sort();
  }
}
