/** The errors of imports, apart from the import code (the API maps them without loading it). */

/** A URI that names nothing readable, or a file that does not decode (400 `invalid_import`). */
export class ImportSourceError extends Error {
  readonly code = 'invalid_import';
}

/** The table does not exist or is not a table imports may write to (409 `import_refused`). */
export class ImportRefusedError extends Error {
  readonly code = 'import_refused';
}

/** `MOONLINK_IMPORT_ROOTS`: folders file:// imports may read, separated by commas. */
export function importRootsFromEnv(env: Record<string, string | undefined> = process.env): string[] {
  return (env.MOONLINK_IMPORT_ROOTS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
