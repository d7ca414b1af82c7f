/**
 * Object-store layout of a table. Tables of the default namespace live under `tables/<name>/`,
 * others under `tables/<ns>/<name>/` (so a namespace may not share its name with a table of the
 * default namespace: lib/table-admin.ts refuses that).
 */
import { DEFAULT_NAMESPACE, parseTableName } from '../schema/table-name.ts';

function relative(name: string): string {
  const t = parseTableName(name);
  if (!t) throw new Error(`invalid table name ${JSON.stringify(name)}`);
  return t.namespace === DEFAULT_NAMESPACE ? t.name : `${t.namespace}/${t.name}`;
}

/** Where a table's durable objects live: data files, Iceberg metadata, index runs. */
export function tableRootOf(name: string): string {
  return `tables/${relative(name)}`;
}

/**
 * Where a table's short-lived objects live: tail files, read-snapshot manifests and their
 * deletion vectors. The garbage collector removes them; on S3 a lifecycle rule on `tmp/` is the
 * safety net for anything a crash leaves behind.
 */
export function ephemeralRootOf(name: string): string {
  return `tmp/tables/${relative(name)}`;
}
