/**
 * Object-store layout of a table. A table's objects live under its location, a path relative
 * to `tables/` that is fixed when the table is created and kept when it is renamed. Tables
 * created before locations were stored have none: theirs is derived from the name, as for new
 * tables whose derived place is free — `tables/<name>/` in the default namespace and
 * `tables/<ns>/<name>/` in others (so a namespace may not share its name with a table of the
 * default namespace: lib/namespace-admin.ts refuses that). Where a renamed table still holds
 * the derived place, a new table gets `tables/<ns>__<name>-<uuid>/`: `-` is never part of a
 * name, so no name ever derives a path at or under it.
 */
import { DEFAULT_NAMESPACE, flatTableName, parseTableName } from '../schema/table-name.ts';

/** What a table's paths are built from: a table definition, or any part of one with the name. */
export interface TablePlace {
  name: string;
  location?: string;
}

/** The location a name derives (see the module comment). */
export function derivedLocation(name: string): string {
  const t = parseTableName(name);
  if (!t) throw new Error(`invalid table name ${JSON.stringify(name)}`);
  return t.namespace === DEFAULT_NAMESPACE ? t.name : `${t.namespace}/${t.name}`;
}

/** The table's location relative to `tables/` (its stored one, else the derived one). */
export function locationOf(t: TablePlace): string {
  return t.location ?? derivedLocation(t.name);
}

/** Whether two locations overlap: one is the other or lies under it (a purge of one would delete the other). */
export function locationsOverlap(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

/**
 * The location for a new table: the derived one unless a table in `existing` overlaps it (one
 * renamed away from it), then one no name derives.
 */
export function locationForNew(name: string, tableUuid: string, existing: readonly TablePlace[]): string {
  const derived = derivedLocation(name);
  if (!existing.some((t) => locationsOverlap(locationOf(t), derived))) return derived;
  return `${flatTableName(name)}-${tableUuid.replace(/-/g, '').slice(0, 12)}`;
}

/** Where a table's durable objects live: data files, Iceberg metadata, index runs. */
export function tableRootOf(t: TablePlace): string {
  return `tables/${locationOf(t)}`;
}

/**
 * Where a table's short-lived objects live: tail files, read-snapshot manifests and their
 * deletion vectors. The garbage collector removes them; on S3 a lifecycle rule on `tmp/` is the
 * safety net for anything a crash leaves behind.
 */
export function ephemeralRootOf(t: TablePlace): string {
  return `tmp/tables/${locationOf(t)}`;
}
