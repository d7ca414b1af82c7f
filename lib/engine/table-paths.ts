/** Object-store layout of a table. */

/** Where a table's durable objects live: data files, Iceberg metadata, index runs. */
export function tableRootOf(name: string): string {
  return `tables/${name}`;
}

/**
 * Where a table's short-lived objects live: tail files, read-snapshot manifests and their
 * deletion vectors. The garbage collector removes them; on S3 a lifecycle rule on `tmp/` is the
 * safety net for anything a crash leaves behind.
 */
export function ephemeralRootOf(name: string): string {
  return `tmp/tables/${name}`;
}
