/** How each table stands in a writer, and what `GET /health` reports of the writer. */

import { LogDamagedError } from '../log/durable-log.ts';
import { DataFileMissingError } from '../store/object-store.ts';

/** How a table stands in this writer. */
export type TableStanding = 'open' | 'recovering' | 'damaged' | 'failed';

export interface TableProblem {
  table: string;
  state: Exclude<TableStanding, 'open'>;
  error: { code: string; message: string } & Record<string, unknown>;
}

export interface WriterHealth {
  ready: boolean;
  problems: (
    | TableProblem
    | { component: string; state: string; error: { code: string; message: string } }
    | { table: string; state: 'source_error'; error: { code: string; message: string } }
  )[];
}

/** The error a table problem reports (code and message, plus what names the damage). */
export function problemError(e: unknown): TableProblem['error'] {
  if (e instanceof LogDamagedError) return { code: e.code, message: e.message, ...e.damage };
  if (e instanceof DataFileMissingError) return { code: e.code, message: e.message, object: e.key };
  const code = (e as { code?: unknown }).code;
  return {
    code: typeof code === 'string' && /^[a-z_]+$/.test(code) ? code : 'open_failed',
    message: (e as Error).message ?? String(e),
  };
}
