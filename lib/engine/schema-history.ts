/**
 * A table's schemas and partition specs as the writer has posted them: the Iceberg metadata's,
 * plus the changes posted since (before the loop applies them: a record logged now is decoded
 * in the latest one), with the LSN each schema became current at.
 */

import type { IcebergTable } from '../iceberg/iceberg-table.ts';
import type { Lsn } from '../lsn.ts';
import type { PartitionSpec } from '../schema/partition-spec.ts';
import type { EvolvedSchema } from '../schema/schema-change.ts';
import type { TableSchema } from '../schema/table-schema.ts';

export class SchemaHistory {
  /** Every schema the table had, by id, up to the latest posted change (decoding old records). */
  readonly schemas = new Map<number, TableSchema>();
  /** Every partition spec of the table (those set by this process too), by id. */
  readonly specs: Map<number, PartitionSpec>;
  /** The schema as of the last change posted. */
  latest: TableSchema;
  /** The table's `last-column-id` as of the last change posted (new field ids go above it). */
  lastColumnId: number;
  /** The highest partition field id the table used (Iceberg's `last-partition-id`). */
  lastPartitionId: number;
  /** The LSN each schema posted by this process became current at. */
  private readonly lsns = new Map<number, Lsn>();

  constructor(
    iceberg: IcebergTable,
    private readonly openedAt: Lsn,
  ) {
    this.latest = iceberg.schema();
    this.lastColumnId = iceberg.lastColumnId;
    for (const sc of iceberg.schemas()) this.schemas.set(sc.schemaId, sc);
    this.schemas.set(this.latest.schemaId, this.latest);
    this.specs = iceberg.specs();
    this.lastPartitionId = iceberg.lastPartitionId;
  }

  schemaPosted(lsn: Lsn, evolved: EvolvedSchema): void {
    this.schemas.set(evolved.schema.schemaId, evolved.schema);
    this.lsns.set(evolved.schema.schemaId, lsn);
    this.latest = evolved.schema;
    this.lastColumnId = Math.max(this.lastColumnId, evolved.lastColumnId);
  }

  specPosted(spec: PartitionSpec, lastPartitionId: number): void {
    this.lastPartitionId = Math.max(this.lastPartitionId, lastPartitionId);
    this.specs.set(spec.specId, spec);
  }

  /** Oldest first. */
  history(): TableSchema[] {
    return [...this.schemas.values()].sort((a, b) => a.schemaId - b.schemaId);
  }

  /**
   * The LSN at which a schema became the table's (a change posted by this process), or the LSN
   * the table opened at for schemas it found in Iceberg (they became current at or before it).
   */
  changedAt(id: number): Lsn {
    return this.lsns.get(id) ?? this.openedAt;
  }
}
