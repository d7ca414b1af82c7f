/**
 * Fault injection for the object store and the catalog, driven by a seeded PRNG: errors before
 * a request, delays, partial writes (a truncated object left behind, then an error), and
 * responses lost after the request succeeded. Same seed, same decisions in call order.
 */

import type {
  Catalog,
  Lease,
  NamespaceEntry,
  PointerUpdate,
  TablePointer,
} from '../../lib/catalog/catalog.ts';
import type { Lsn } from '../../lib/lsn.ts';
import type { TableDefinition } from '../../lib/schema/table-schema.ts';
import type { ObjectInfo, ObjectStore, PutOptions } from '../../lib/store/object-store.ts';

export interface FaultRates {
  /** Fails before doing anything. */
  error: number;
  /** Does the work, then reports a failure (the response was lost). */
  lostResponse: number;
  /** Leaves a truncated object, then fails (put only). */
  partialWrite: number;
  /** Adds a delay of up to `maxDelayMs`. */
  delay: number;
  maxDelayMs: number;
}

export const NO_FAULTS: FaultRates = { error: 0, lostResponse: 0, partialWrite: 0, delay: 0, maxDelayMs: 0 };

export class InjectedFault extends Error {
  readonly retryable = true;
  constructor(what: string) {
    super(`injected fault: ${what}`);
  }
}

export class FaultCounter {
  counts: Record<string, number> = {};
  enabled = true;
  /** Every faultable call in order (`what key`), when tracing: a replay must repeat it exactly. */
  readonly trace: string[] | undefined;

  constructor(
    /** How a delay waits (a virtual clock's sleep in simulations). */
    readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
    options: { trace?: boolean } = {},
  ) {
    this.trace = options.trace ? [] : undefined;
  }
  bump(kind: string): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
  }
  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }
}

class Dice {
  constructor(
    private readonly rand: () => number,
    private readonly rates: FaultRates,
    private readonly counter: FaultCounter,
  ) {}
  async before(what: string, key = ''): Promise<void> {
    this.counter.trace?.push(`${what} ${key}`);
    if (!this.counter.enabled) return;
    if (this.rand() < this.rates.delay) await this.counter.sleep(this.rand() * this.rates.maxDelayMs);
    if (this.rand() < this.rates.error) {
      this.counter.bump(`error:${what}`);
      throw new InjectedFault(`${what} failed`);
    }
  }
  lost(what: string): boolean {
    if (!this.counter.enabled || this.rand() >= this.rates.lostResponse) return false;
    this.counter.bump(`lost:${what}`);
    return true;
  }
  partial(what: string): boolean {
    if (!this.counter.enabled || this.rand() >= this.rates.partialWrite) return false;
    this.counter.bump(`partial:${what}`);
    return true;
  }
}

export class FaultyObjectStore implements ObjectStore {
  readonly description: string;
  private readonly dice: Dice;

  constructor(
    readonly inner: ObjectStore,
    rand: () => number,
    rates: FaultRates,
    readonly counter = new FaultCounter(),
  ) {
    this.description = `faulty(${inner.description})`;
    this.dice = new Dice(rand, rates, counter);
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    await this.dice.before('put', key);
    if (this.dice.partial('put')) {
      await this.inner.put(key, body.subarray(0, Math.floor(body.length / 2)));
      throw new InjectedFault(`put ${key} cut off`);
    }
    await this.inner.put(key, body, options);
    if (this.dice.lost('put')) throw new InjectedFault(`put ${key} response lost`);
  }
  async get(key: string): Promise<Uint8Array> {
    await this.dice.before('get', key);
    return this.inner.get(key);
  }
  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    await this.dice.before('getRange', key);
    return this.inner.getRange(key, offset, length);
  }
  async head(key: string): Promise<ObjectInfo | undefined> {
    await this.dice.before('head', key);
    return this.inner.head(key);
  }
  async delete(key: string): Promise<void> {
    await this.dice.before('delete', key);
    await this.inner.delete(key);
    if (this.dice.lost('delete')) throw new InjectedFault(`delete ${key} response lost`);
  }
  async deleteMany(keys: string[]): Promise<void> {
    await this.dice.before('deleteMany', keys.join(' '));
    await this.inner.deleteMany(keys);
    if (this.dice.lost('deleteMany')) throw new InjectedFault('deleteMany response lost');
  }
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    await this.dice.before('list', prefix);
    yield* this.inner.list(prefix);
  }
  uri(key: string): string {
    return this.inner.uri(key);
  }
  keyFromUri(uri: string): string | undefined {
    return this.inner.keyFromUri(uri);
  }
  readUrl(key: string, expiresInSeconds: number): Promise<string> {
    return this.inner.readUrl(key, expiresInSeconds);
  }
}

export class FaultyCatalog implements Catalog {
  readonly description: string;
  private readonly dice: Dice;

  constructor(
    readonly inner: Catalog,
    rand: () => number,
    rates: FaultRates,
    readonly counter = new FaultCounter(),
  ) {
    this.description = `faulty(${inner.description})`;
    this.dice = new Dice(rand, rates, counter);
  }

  private async call<T>(what: string, fn: () => Promise<T>, idempotentLoss = true): Promise<T> {
    await this.dice.before(what);
    const r = await fn();
    if (idempotentLoss && this.dice.lost(what)) throw new InjectedFault(`${what} response lost`);
    return r;
  }

  // Namespaces are administration, not the engine's hot path: passed through unfaulted.
  createNamespace(ns: NamespaceEntry): Promise<void> {
    return this.inner.createNamespace(ns);
  }
  getNamespace(name: string): Promise<NamespaceEntry | undefined> {
    return this.inner.getNamespace(name);
  }
  listNamespaces(): Promise<NamespaceEntry[]> {
    return this.inner.listNamespaces();
  }
  updateNamespace(
    name: string,
    change: (props: Record<string, string>) => Record<string, string>,
  ): Promise<NamespaceEntry | undefined> {
    return this.inner.updateNamespace(name, change);
  }
  dropNamespace(name: string): Promise<void> {
    return this.inner.dropNamespace(name);
  }
  createTable(def: TableDefinition): Promise<void> {
    return this.inner.createTable(def);
  }
  getTable(name: string): Promise<TableDefinition | undefined> {
    return this.call('getTable', () => this.inner.getTable(name), false);
  }
  listTables(): Promise<TableDefinition[]> {
    return this.call('listTables', () => this.inner.listTables(), false);
  }
  dropTable(name: string): Promise<void> {
    return this.inner.dropTable(name);
  }
  renameTable(from: string, def: TableDefinition, epoch: number, lsn: Lsn): Promise<void> {
    return this.inner.renameTable(from, def, epoch, lsn);
  }
  updateDefinition(def: TableDefinition): Promise<void> {
    return this.call('updateDefinition', () => this.inner.updateDefinition(def));
  }
  acquireEpoch(table: string): Promise<number> {
    return this.call('acquireEpoch', () => this.inner.acquireEpoch(table));
  }
  getPointer(table: string): Promise<TablePointer | undefined> {
    return this.call('getPointer', () => this.inner.getPointer(table), false);
  }
  updatePointer(
    table: string,
    expectedVersion: number,
    epoch: number,
    update: PointerUpdate,
  ): Promise<TablePointer> {
    return this.call('updatePointer', () => this.inner.updatePointer(table, expectedVersion, epoch, update));
  }
  putLease(lease: Lease): Promise<void> {
    return this.call('putLease', () => this.inner.putLease(lease));
  }
  getLease(leaseId: string): Promise<Lease | undefined> {
    return this.call('getLease', () => this.inner.getLease(leaseId), false);
  }
  deleteLease(leaseId: string): Promise<boolean> {
    return this.call('deleteLease', () => this.inner.deleteLease(leaseId));
  }
  listLeases(table: string): Promise<Lease[]> {
    return this.call('listLeases', () => this.inner.listLeases(table), false);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
