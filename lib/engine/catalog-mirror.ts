/**
 * An outside catalog that mirrors each table's current Iceberg metadata location (AWS Glue, so
 * Athena finds the tables). The writer tells it about every commit and lets it catch up on its
 * own: a mirror that is down never blocks ingestion, and it only ever needs the newest location.
 */
import type { TableSchema } from '../schema/table-schema.ts';

export interface MirroredTable {
  /** Qualified name (`name` or `ns.name`). */
  table: string;
  tableUuid: string;
  /** The table's location (the Iceberg `location`) and its current metadata file. */
  tableLocation: string;
  metadataLocation: string;
  schema: TableSchema;
}

export interface CatalogMirror {
  /** Short name for status and metrics (`glue`). */
  readonly name: string;
  /** The table committed (or was opened at) this metadata; the mirror catches up to it. */
  committed(t: MirroredTable): void;
  /** The table was dropped: remove it from the mirror (retried inside; never throws). */
  dropped(table: string): Promise<void>;
  /** This writer no longer owns the table (fenced, or closing): stop mirroring it. */
  released(table: string): void;
  /** What `GET /tables/{name}` shows under `catalogs.<name>`. */
  status(table: string): Record<string, unknown> | undefined;
  /** Seconds the oldest commit not yet mirrored has waited (0 when all are mirrored). */
  lagSeconds(): number;
  close(): Promise<void>;
}

/** The writer's mirrors, told of each table's events together. */
export class CatalogMirrors {
  constructor(readonly list: readonly CatalogMirror[] = []) {}

  /** The table committed: `table` describes it (called only when there are mirrors). */
  committed(table: () => MirroredTable): void {
    if (this.list.length === 0) return;
    const t = table();
    for (const m of this.list) m.committed(t);
  }

  released(table: string): void {
    for (const m of this.list) m.released(table);
  }

  async dropped(table: string): Promise<void> {
    await Promise.all(this.list.map((m) => m.dropped(table)));
  }

  /** `catalogs` of `GET /tables/{name}`: each mirror's sync state of the table. */
  status(table: string): Record<string, unknown> | undefined {
    if (this.list.length === 0) return undefined;
    return Object.fromEntries(this.list.map((m) => [m.name, m.status(table) ?? { state: 'not_synced' }]));
  }

  /** Seconds each mirror is behind (metrics). */
  lagSeconds(): Record<string, number> {
    return Object.fromEntries(this.list.map((m) => [m.name, m.lagSeconds()]));
  }

  async close(): Promise<void> {
    await Promise.all(this.list.map((m) => m.close()));
  }
}
