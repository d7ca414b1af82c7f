/**
 * The in-memory catalog and the embedded default built on it. `MemoryCatalog` keeps the state
 * in memory (tests, simulations); `FileCatalog` persists it to one JSON file in the data folder
 * with group commit (a burst of lease and pointer updates costs one fsync). One process owns
 * the folder at a time (see lib/util/dir-lock.ts); within it, updates are compare-and-swap like
 * the DynamoDB catalog's, so the engine sees the same behaviour on both.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { type Lsn, maxLsn } from '../lsn.ts';
import type { TableDefinition } from '../schema/table-schema.ts';
import { writeFileAtomic } from '../util/fs-atomic.ts';
import { GroupCommit } from '../util/group-commit.ts';
import {
  type Catalog,
  ConflictError,
  definitionIsNewer,
  FencedError,
  type Lease,
  type NamespaceEntry,
  NamespaceExistsError,
  NoSuchTableError,
  type PointerUpdate,
  pointerFromStored,
  type StoredPointer,
  TableExistsError,
  type TablePointer,
  tableOfLease,
} from './catalog.ts';

interface TableEntry {
  def: TableDefinition;
  epoch: number;
  pointer?: TablePointer;
  leases: Record<string, Lease>;
}

type StoredEntry = Omit<TableEntry, 'pointer'> & { pointer?: StoredPointer };

interface CatalogFile<E = TableEntry> {
  version: 1;
  tables: Record<string, E>;
  /** Absent in catalogs written before namespaces existed. */
  namespaces?: Record<string, NamespaceEntry>;
}

export class MemoryCatalog implements Catalog {
  readonly description: string = 'memory';
  protected state: CatalogFile = { version: 1, tables: {} };
  protected readonly commit: { sync(): Promise<void> } = { sync: async () => undefined };

  private entry(table: string): TableEntry | undefined {
    return Object.hasOwn(this.state.tables, table) ? this.state.tables[table] : undefined;
  }

  private namespaces(): Record<string, NamespaceEntry> {
    this.state.namespaces ??= {};
    return this.state.namespaces;
  }

  async createNamespace(ns: NamespaceEntry): Promise<void> {
    const all = this.namespaces();
    if (Object.hasOwn(all, ns.name)) throw new NamespaceExistsError(ns.name);
    all[ns.name] = structuredClone(ns);
    await this.commit.sync();
  }

  async getNamespace(name: string): Promise<NamespaceEntry | undefined> {
    const all = this.namespaces();
    return Object.hasOwn(all, name) ? structuredClone(all[name]) : undefined;
  }

  async listNamespaces(): Promise<NamespaceEntry[]> {
    return Object.values(this.namespaces())
      .map((n) => structuredClone(n))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async updateNamespace(
    name: string,
    change: (props: Record<string, string>) => Record<string, string>,
  ): Promise<NamespaceEntry | undefined> {
    const all = this.namespaces();
    if (!Object.hasOwn(all, name)) return undefined;
    all[name] = { ...all[name], properties: change({ ...all[name].properties }) };
    await this.commit.sync();
    return structuredClone(all[name]);
  }

  async dropNamespace(name: string): Promise<void> {
    const all = this.namespaces();
    if (!Object.hasOwn(all, name)) return;
    delete all[name];
    await this.commit.sync();
  }

  async createTable(def: TableDefinition): Promise<void> {
    if (this.entry(def.name)) throw new TableExistsError(def.name);
    this.state.tables[def.name] = { def: structuredClone(def), epoch: 0, leases: {} };
    await this.commit.sync();
  }

  async getTable(name: string): Promise<TableDefinition | undefined> {
    const e = this.entry(name);
    return e ? structuredClone(e.def) : undefined;
  }

  async listTables(): Promise<TableDefinition[]> {
    return Object.values(this.state.tables)
      .map((e) => structuredClone(e.def))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async updateDefinition(def: TableDefinition): Promise<void> {
    const e = this.entry(def.name);
    if (!e || e.def.tableUuid !== def.tableUuid || !definitionIsNewer(def, e.def)) return;
    e.def = structuredClone(def);
    await this.commit.sync();
  }

  async dropTable(name: string): Promise<void> {
    if (!this.entry(name)) return;
    delete this.state.tables[name];
    await this.commit.sync();
  }

  async renameTable(from: string, def: TableDefinition, epoch: number, lsn: Lsn): Promise<void> {
    const e = this.entry(from);
    if (!e?.pointer) throw new ConflictError(`table "${from}" does not exist`);
    if (e.epoch !== epoch) throw new FencedError(from, epoch, e.epoch);
    if (this.entry(def.name)) throw new TableExistsError(def.name);
    const raise = (v: Lsn): Lsn => maxLsn(v, lsn);
    const pointer: TablePointer = {
      ...e.pointer,
      table: def.name,
      version: e.pointer.version + 1,
      lsn: raise(e.pointer.lsn),
      committedLsn: raise(e.pointer.committedLsn),
      updatedAt: new Date().toISOString(),
    };
    this.state.tables[def.name] = { def: structuredClone(def), epoch, pointer, leases: {} };
    delete this.state.tables[from];
    await this.commit.sync();
  }

  async acquireEpoch(table: string): Promise<number> {
    const e = this.entry(table);
    if (!e) throw new NoSuchTableError(table);
    e.epoch += 1;
    await this.commit.sync();
    return e.epoch;
  }

  async getPointer(table: string): Promise<TablePointer | undefined> {
    const p = this.entry(table)?.pointer;
    return p ? { ...p } : undefined;
  }

  async updatePointer(
    table: string,
    expectedVersion: number,
    epoch: number,
    update: PointerUpdate,
  ): Promise<TablePointer> {
    const e = this.entry(table);
    if (!e) throw new ConflictError(`table "${table}" does not exist`);
    if (e.epoch !== epoch) throw new FencedError(table, epoch, e.epoch);
    const current = e.pointer?.version ?? 0;
    if (current !== expectedVersion) {
      throw new ConflictError(`pointer of "${table}" is at version ${current}, expected ${expectedVersion}`);
    }
    const next: TablePointer = {
      ...update,
      table,
      version: current + 1,
      epoch,
      updatedAt: new Date().toISOString(),
    };
    e.pointer = next;
    await this.commit.sync();
    return { ...next };
  }

  async putLease(lease: Lease): Promise<void> {
    const e = this.entry(lease.table);
    if (!e) throw new ConflictError(`table "${lease.table}" does not exist`);
    e.leases[lease.leaseId] = { ...lease };
    await this.commit.sync();
  }

  async getLease(leaseId: string): Promise<Lease | undefined> {
    const table = tableOfLease(leaseId);
    const l = table ? this.entry(table)?.leases[leaseId] : undefined;
    return l ? { ...l } : undefined;
  }

  async deleteLease(leaseId: string): Promise<boolean> {
    const table = tableOfLease(leaseId);
    const e = table ? this.entry(table) : undefined;
    if (!e || !Object.hasOwn(e.leases, leaseId)) return false;
    delete e.leases[leaseId];
    await this.commit.sync();
    return true;
  }

  async listLeases(table: string): Promise<Lease[]> {
    const e = this.entry(table);
    if (!e) return [];
    // Expired leases are tidied here (the DynamoDB catalog leaves that to TTL).
    const now = Date.now();
    let removed = false;
    for (const [id, l] of Object.entries(e.leases)) {
      if (l.expiresAt < now - 60_000) {
        delete e.leases[id];
        removed = true;
      }
    }
    if (removed) void this.commit.sync().catch(() => undefined);
    return Object.values(e.leases).map((l) => ({ ...l }));
  }

  async close(): Promise<void> {
    await this.commit.sync();
  }
}

export class FileCatalog extends MemoryCatalog {
  override readonly description: string;
  protected override readonly commit: GroupCommit;

  private constructor(readonly file: string) {
    super();
    this.description = `file:${file}`;
    // LSNs are bigints in memory and decimal strings in the file.
    this.commit = new GroupCommit(() =>
      writeFileAtomic(
        this.file,
        JSON.stringify(this.state, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
      ),
    );
  }

  static async open(file: string): Promise<FileCatalog> {
    const c = new FileCatalog(path.resolve(file));
    try {
      const parsed = JSON.parse(await fs.readFile(c.file, 'utf8')) as CatalogFile<StoredEntry>;
      if (parsed.version !== 1) throw new Error(`${c.file}: unsupported catalog version ${parsed.version}`);
      const tables: Record<string, TableEntry> = {};
      for (const [name, { pointer, ...e }] of Object.entries(parsed.tables))
        tables[name] = pointer ? { ...e, pointer: pointerFromStored(pointer) } : e;
      c.state = { ...parsed, tables };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return c;
  }
}
