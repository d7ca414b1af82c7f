/** What a column may be called, and how many a table may have (no zod: ingest loads this). */
export const COLUMN_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
export const MAX_COLUMNS = 1000;
