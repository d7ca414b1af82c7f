/**
 * The catalog: per table its definition, the writer's fencing epoch, the pointer to the current
 * read snapshot and Iceberg metadata (updated only by compare-and-swap on version and epoch),
 * source checkpoints, and the leases readers hold on snapshots.
 */
import { type Lsn, lsnFromText } from '../lsn.ts';
import type { TableDefinition } from '../schema/table-schema.ts';

export interface TablePointer {
  table: string;
  /** Increments on every update; the compare-and-swap token. */
  version: number;
  /** Fencing epoch of the writer that owns the table. */
  epoch: number;
  /** Object-store key of the current read snapshot manifest. */
  snapshotKey?: string;
  /** LSN the read snapshot covers (stored as a decimal string: LSNs can exceed 2^53). */
  lsn: Lsn;
  /** Current Iceberg metadata file (absolute location and store key). */
  metadataLocation?: string;
  metadataKey?: string;
  /** LSN covered by the last Iceberg commit (stored as a decimal string). */
  committedLsn: Lsn;
  /** Source positions committed with the Iceberg snapshot (e.g. Kinesis shard sequence numbers). */
  checkpoints?: Record<string, string>;
  updatedAt: string;
}

export type PointerUpdate = Omit<TablePointer, 'table' | 'version' | 'epoch' | 'updatedAt'>;

/** A pointer as a catalog stores it (a JSON file, a DynamoDB item): its LSNs as decimal strings. */
export type StoredPointer = Omit<TablePointer, 'lsn' | 'committedLsn'> & {
  lsn: string;
  committedLsn: string;
};

export function pointerFromStored(p: StoredPointer): TablePointer {
  return { ...p, lsn: lsnFromText(p.lsn), committedLsn: lsnFromText(p.committedLsn) };
}

export interface Lease {
  /** `<table>.<random>`, so a lease can be found from its id alone. */
  leaseId: string;
  table: string;
  snapshotKey: string;
  /** Milliseconds since the epoch. The garbage collector checks this itself. */
  expiresAt: number;
}

/** A namespace and its properties (the default namespace exists without an entry). */
export interface NamespaceEntry {
  name: string;
  properties: Record<string, string>;
  createdAt: string;
}

export interface Catalog {
  readonly description: string;
  /** Throws {@link NamespaceExistsError}. */
  createNamespace(ns: NamespaceEntry): Promise<void>;
  getNamespace(name: string): Promise<NamespaceEntry | undefined>;
  listNamespaces(): Promise<NamespaceEntry[]>;
  /**
   * Sets and removes properties (read-modify-write, compare-and-swap on the stored entry).
   * Returns undefined when there is no such namespace.
   */
  updateNamespace(
    name: string,
    change: (props: Record<string, string>) => Record<string, string>,
  ): Promise<NamespaceEntry | undefined>;
  /** Removes the entry (callers check it holds no tables first). */
  dropNamespace(name: string): Promise<void>;

  /** Throws {@link TableExistsError}. */
  createTable(def: TableDefinition): Promise<void>;
  getTable(name: string): Promise<TableDefinition | undefined>;
  listTables(): Promise<TableDefinition[]>;
  /**
   * Replaces a table's definition after a schema change (lib/schema/schema-change.ts): only
   * the same table (`tableUuid`) and only with a newer schema (higher `schemaId`); otherwise
   * nothing changes (an older writer, or a change already stored).
   */
  updateDefinition(def: TableDefinition): Promise<void>;
  /** Removes the definition, pointer and leases of a table. */
  dropTable(name: string): Promise<void>;

  /**
   * Renames a table: its definition (`def`: the new name, the location kept) and its pointer
   * move to `def.name`, the pointer's LSNs raised to at least `lsn`; the old name's leases are
   * dropped. Only the writer holding `epoch` may rename. Throws {@link TableExistsError} when
   * the new name is taken, {@link ConflictError} when `from` does not exist (or has no
   * pointer), {@link FencedError} on another epoch.
   */
  renameTable(from: string, def: TableDefinition, epoch: number, lsn: Lsn): Promise<void>;
  /**
   * The first step of a rename where other processes append to the log (Lambda functions on
   * AWS): the old name stops being found (getTable, listTables) while its writer goes on
   * applying and committing under it, so appends made with a cached definition can drain.
   * {@link unsealRename} (or a crash, through {@link finishRenames}) undoes it; a
   * {@link renameTable} completes it. Catalogs whose writers see every append need none.
   */
  sealRename?(from: string, to: string): Promise<void>;
  unsealRename?(from: string): Promise<void>;
  /**
   * Completes renames a crash interrupted, for catalogs that cannot rename in one write (the
   * DynamoDB catalog records the intent first). The writer calls it before it lists tables.
   */
  finishRenames?(): Promise<void>;

  /** Takes ownership of a table: a new epoch, so an older writer's next update fails. */
  acquireEpoch(table: string): Promise<number>;
  getPointer(table: string): Promise<TablePointer | undefined>;
  /**
   * Compare-and-swap: succeeds only if the stored version is `expectedVersion` (0 = no pointer
   * yet) and the stored epoch is `epoch`. Throws {@link FencedError} when another writer has a
   * newer epoch, {@link ConflictError} on a version mismatch.
   */
  updatePointer(
    table: string,
    expectedVersion: number,
    epoch: number,
    update: PointerUpdate,
  ): Promise<TablePointer>;

  putLease(lease: Lease): Promise<void>;
  getLease(leaseId: string): Promise<Lease | undefined>;
  /** Returns false when no such lease exists. */
  deleteLease(leaseId: string): Promise<boolean>;
  /** Leases of a table, expired ones included (callers compare `expiresAt`). */
  listLeases(table: string): Promise<Lease[]>;

  close(): Promise<void>;
}

export class TableExistsError extends Error {
  readonly code = 'table_exists';
  constructor(readonly table: string) {
    super(`table "${table}" already exists`);
  }
}

export class NamespaceExistsError extends Error {
  readonly code = 'namespace_exists';
  constructor(readonly namespace: string) {
    super(`namespace "${namespace}" already exists`);
  }
}

export class ConflictError extends Error {
  readonly code = 'conflict';
}

/** The catalog has no table of this name. */
export class NoSuchTableError extends Error {
  readonly code = 'not_found';
  constructor(readonly table: string) {
    super(`table "${table}" does not exist`);
  }
}

export class FencedError extends Error {
  readonly code = 'fenced';
  /** No retry helps: another writer owns the table (see util/retry.ts). */
  readonly permanent = true;
  constructor(
    readonly table: string,
    readonly epoch: number,
    readonly currentEpoch: number,
  ) {
    super(`writer for table "${table}" with epoch ${epoch} was fenced by epoch ${currentEpoch}`);
  }
}

/** The table is still being created (its pointer is not initialized yet); retry shortly. */
export class TableNotReadyError extends Error {
  readonly code = 'table_not_ready';
  constructor(readonly table: string) {
    super(`table "${table}" is still being created; retry shortly`);
  }
}

export function tableOfLease(leaseId: string): string | undefined {
  const dot = leaseId.lastIndexOf('.');
  return dot > 0 ? leaseId.slice(0, dot) : undefined;
}

/** Writes to a damaged table are refused (503 `table_damaged`) until it is repaired. */
export class TableDamagedError extends Error {
  readonly code = 'table_damaged';
  constructor(
    readonly table: string,
    readonly details: Record<string, unknown>,
  ) {
    super(`table "${table}" is damaged and takes no writes: ${String(details.message ?? '')}`);
  }
}

/** A table is being renamed: its writes are refused (503, retry under the new name shortly). */
export class TableRenamingError extends Error {
  readonly code = 'table_renaming';
  constructor(
    readonly table: string,
    readonly to: string,
  ) {
    super(`table "${table}" is being renamed to "${to}"; write to "${to}" once the rename is done`);
  }
}

/** A rename that cannot be done (409 `rename_refused`), with the reason. */
export class RenameRefusedError extends Error {
  readonly code = 'rename_refused';
}

/** Whether `def` is a later definition than `stored`: a newer schema, or a newer partition spec. */
export function definitionIsNewer(def: TableDefinition, stored: TableDefinition): boolean {
  if (def.schema.schemaId !== stored.schema.schemaId) return def.schema.schemaId > stored.schema.schemaId;
  return (def.partitionVersion ?? 0) > (stored.partitionVersion ?? 0);
}
