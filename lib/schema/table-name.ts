/**
 * Table names and namespaces. A table is `name` (namespace `default`) or `ns.name`; the public
 * API, the catalog and the logs all use this one qualified form, and `default.name` is the
 * same table as `name`. Namespaces are one level deep (Iceberg allows more; we refuse them with
 * a clear error).
 */

/** One part of a name: a namespace or a table. */
export const NAME_PART = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** A qualified table name as stored: `name` or `ns.name`. */
export const TABLE_NAME_PATTERN = /^(?:[A-Za-z_][A-Za-z0-9_]{0,127}\.)?[A-Za-z_][A-Za-z0-9_]{0,127}$/;
export const DEFAULT_NAMESPACE = 'default';

export interface TableIdent {
  namespace: string;
  name: string;
}

export class TableNameError extends Error {
  readonly code = 'invalid_table_name';
}

/** Splits a qualified name; undefined when it is not one. */
export function parseTableName(qualified: string): TableIdent | undefined {
  if (!TABLE_NAME_PATTERN.test(qualified)) return undefined;
  const dot = qualified.indexOf('.');
  return dot < 0
    ? { namespace: DEFAULT_NAMESPACE, name: qualified }
    : { namespace: qualified.slice(0, dot), name: qualified.slice(dot + 1) };
}

/** The stored form of a table name: tables of the default namespace have no prefix. */
export function qualifiedName(namespace: string, name: string): string {
  return namespace === DEFAULT_NAMESPACE ? name : `${namespace}.${name}`;
}

/** Validates and normalizes (`default.x` → `x`) a table name from a request. Throws {@link TableNameError}. */
export function canonicalTableName(name: unknown): string {
  const ident = typeof name === 'string' ? parseTableName(name) : undefined;
  if (!ident) {
    throw new TableNameError(
      `invalid table name ${JSON.stringify(name)}: use "name" or "namespace.name", each 1-128 letters, digits and underscores, not starting with a digit`,
    );
  }
  return qualifiedName(ident.namespace, ident.name);
}

export function validateNamespace(ns: unknown): string {
  if (typeof ns !== 'string' || !NAME_PART.test(ns)) {
    throw new TableNameError(
      `invalid namespace ${JSON.stringify(ns)}: use 1-128 letters, digits and underscores, not starting with a digit (one level)`,
    );
  }
  return ns;
}

export function namespaceOf(qualified: string): string {
  const dot = qualified.indexOf('.');
  return dot < 0 ? DEFAULT_NAMESPACE : qualified.slice(0, dot);
}

/** A name safe for Postgres identifiers and file names (`ns.name` → `ns__name`). */
export function flatTableName(qualified: string): string {
  return qualified.replace('.', '__');
}
