/**
 * Following Postgres DDL. pgoutput sends a Relation message (the columns, in order, with their
 * types) before the first change of a table in a session and again after the table changed.
 * Compared with the Moonlink table's schemas it means one of:
 * - `same`: the table's newest schema;
 * - `older`: an earlier schema of the table (a restart replays changes made before a schema
 *   change: Postgres decodes them with the table as it was then);
 * - `evolve`: a change to follow: columns added, dropped or renamed, types promoted the way
 *   Iceberg allows (int2 → int4 → int8, float4 → float8, numeric precision up);
 * - anything else (a type Iceberg cannot promote to, a key column dropped or renamed, any
 *   change of a table keyed by row digest) cannot be followed: {@link UnfollowableChangeError}.
 *
 * A rename is told from a drop and an add by position: the same number of columns gone and
 * new, each new one in the place of a gone one, with the same type. (A drop of the last column
 * and an add of one of its type with no change in between reads as a rename.)
 */
import type { IcebergType } from '../../schema/iceberg-type.ts';
import { typeName } from '../../schema/iceberg-type.ts';
import {
  applySchemaChanges,
  type EvolvedSchema,
  isAllowedPromotion,
  type SchemaChange,
} from '../../schema/schema-change.ts';
import type { FormatVersion, TableSchema } from '../../schema/table-schema.ts';
import { ROW_KEY_COLUMN } from './pg-schema.ts';

export class UnfollowableChangeError extends Error {}

export interface IncomingColumn {
  name: string;
  type: IcebergType;
  pgName: string;
}

export type RelationMatch =
  | { kind: 'same' | 'older'; schema: TableSchema }
  | { kind: 'evolve'; evolved: EvolvedSchema; changes: SchemaChange[] };

/** The table's own columns (the row-digest key column is ours, not Postgres'). */
function ownColumns(schema: TableSchema): { name: string; type: IcebergType }[] {
  return schema.fields.filter((f) => f.name !== ROW_KEY_COLUMN);
}

/** The same columns with the same types (in any order: a re-copy appends new ones at the end). */
function matches(schema: TableSchema, incoming: IncomingColumn[]): boolean {
  const own = ownColumns(schema);
  return (
    own.length === incoming.length &&
    incoming.every((c) => {
      const f = own.find((x) => x.name === c.name);
      return f !== undefined && typeName(f.type) === typeName(c.type);
    })
  );
}

/**
 * What a Relation message means for the table (see the file comment). `history`: the table's
 * schemas, oldest first, the newest last. Throws {@link UnfollowableChangeError}.
 */
export function matchRelation(
  history: TableSchema[],
  lastColumnId: number,
  incoming: IncomingColumn[],
  formatVersion: FormatVersion,
  /**
   * Whether this point of the stream comes before the change that made `next` current: then a
   * Relation in the schema before it is a replay. (Otherwise the table went back to an earlier
   * shape, e.g. a column added and dropped again, which is a change like any other.)
   */
  before: (next: TableSchema) => boolean,
): RelationMatch {
  const latest = history[history.length - 1];
  if (matches(latest, incoming)) return { kind: 'same', schema: latest };
  for (let i = history.length - 2; i >= 0; i--)
    if (matches(history[i], incoming) && before(history[i + 1])) return { kind: 'older', schema: history[i] };
  if (latest.primaryKey.includes(ROW_KEY_COLUMN))
    throw new UnfollowableChangeError(
      'the table has no key and is keyed by a digest of each row, which a change of columns would change',
    );
  const changes = changesFor(latest, incoming);
  if (changes.length === 0) return { kind: 'same', schema: latest };
  try {
    return {
      kind: 'evolve',
      evolved: applySchemaChanges(latest, lastColumnId, changes, formatVersion),
      changes,
    };
  } catch (e) {
    throw new UnfollowableChangeError((e as Error).message.replace(/^changes\[\d+\]: /, ''));
  }
}

function changesFor(latest: TableSchema, incoming: IncomingColumn[]): SchemaChange[] {
  const own = ownColumns(latest);
  const incomingNames = new Set(incoming.map((c) => c.name));
  const ownNames = new Set(own.map((f) => f.name));
  const gone = own.filter((f) => !incomingNames.has(f.name));
  const added = incoming.filter((c) => !ownNames.has(c.name));
  const changes: SchemaChange[] = [];
  const renamed = new Map<string, string>();
  if (gone.length > 0 && gone.length === added.length) {
    // Renames keep their place: the columns that stay, in order, with each new name where a
    // gone one was.
    const pairs = gone.map((g, k) => [g, added[k]] as const);
    const inPlace = pairs.every(
      ([g, a]) => own.indexOf(g) === incoming.indexOf(a) && typeName(g.type) === typeName(a.type),
    );
    if (inPlace) for (const [g, a] of pairs) renamed.set(g.name, a.name);
  }
  for (const g of gone) {
    const to = renamed.get(g.name);
    changes.push(
      to ? { action: 'rename-column', name: g.name, newName: to } : { action: 'drop-column', name: g.name },
    );
  }
  for (const c of incoming) {
    const f = own.find((x) => x.name === c.name);
    if (!f) continue;
    if (typeName(f.type) === typeName(c.type)) continue;
    if (!isAllowedPromotion(f.type, c.type))
      throw new UnfollowableChangeError(
        `column "${c.name}" changed from ${typeName(f.type)} to ${typeName(c.type)} (Postgres ${c.pgName}), which Iceberg cannot promote`,
      );
    changes.push({ action: 'widen-column', name: c.name, type: typeName(c.type) });
  }
  const renamedTo = new Set(renamed.values());
  for (const c of added)
    if (!renamedTo.has(c.name)) changes.push({ action: 'add-column', name: c.name, type: typeName(c.type) });
  return changes;
}

/**
 * The schema a re-copy (resync) gives the table: the Postgres table's columns now. Columns of
 * the same name and type (or a promotion) keep their field ids; any other column is new (a new
 * field id: the table is emptied first, so no file holds it). Key columns must keep their type.
 */
export function resyncSchema(
  latest: TableSchema,
  lastColumnId: number,
  incoming: IncomingColumn[],
  formatVersion: FormatVersion,
): EvolvedSchema | undefined {
  if (matches(latest, incoming)) return undefined;
  const own = ownColumns(latest);
  const changes: SchemaChange[] = [];
  for (const f of own) {
    const c = incoming.find((x) => x.name === f.name);
    const keeps = c && (typeName(f.type) === typeName(c.type) || isAllowedPromotion(f.type, c.type));
    if (latest.primaryKey.includes(f.name) && !keeps)
      throw new UnfollowableChangeError(
        `key column "${f.name}" was dropped or changed type in Postgres: drop the table and create it again`,
      );
    if (!c || !keeps) changes.push({ action: 'drop-column', name: f.name });
    else if (typeName(f.type) !== typeName(c.type))
      changes.push({ action: 'widen-column', name: f.name, type: typeName(c.type) });
  }
  for (const c of incoming) {
    const f = own.find((x) => x.name === c.name);
    const kept = f && (typeName(f.type) === typeName(c.type) || isAllowedPromotion(f.type, c.type));
    if (!kept) changes.push({ action: 'add-column', name: c.name, type: typeName(c.type) });
  }
  try {
    return applySchemaChanges(latest, lastColumnId, changes, formatVersion);
  } catch (e) {
    throw new UnfollowableChangeError((e as Error).message.replace(/^changes\[\d+\]: /, ''));
  }
}
