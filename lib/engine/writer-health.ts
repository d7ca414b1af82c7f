/** How each table stands in a writer, and what `GET /health` reports of the writer. */

import { LogDamagedError } from '../log/durable-log.ts';
import { type Lsn, ZERO_LSN } from '../lsn.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import { DataFileMissingError } from '../store/object-store.ts';
import type { TableHandler } from './table-handler.ts';

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
    | ComponentProblem
    | { table: string; state: 'source_error'; error: { code: string; message: string } }
  )[];
}

/** A component's problem in `GET /health`. */
export interface ComponentProblem {
  component: string;
  state: string;
  error: { code: string; message: string };
}

/**
 * Worker threads still loading their code: the writer takes writes meanwhile, but the first
 * ones wait for it, so it is not yet ready.
 */
export function workersStarting(
  pool: ParquetWorkerPool,
  component = 'workers',
): ComponentProblem | undefined {
  if (!pool.starting()) return undefined;
  return {
    component,
    state: 'starting',
    error: { code: 'starting', message: 'worker threads are still loading their code' },
  };
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

/**
 * The tables of a writer that are not simply open: those replaying their log after opening (and
 * the LSN that ends their recovery), those damaged (open, refusing writes) and those that could
 * not be opened.
 */
export class TableStandings {
  private readonly recovering = new Map<string, { target: Lsn; handler: TableHandler }>();
  private readonly problems = new Map<string, TableProblem>();

  /** `current` is the table's open handler (a recovery of an older one is over). */
  constructor(private readonly current: (table: string) => TableHandler | undefined) {}

  /** The table replays its log until a published snapshot reaches `target`. */
  startRecovery(table: string, target: Lsn, handler: TableHandler): void {
    this.recovering.set(table, { target, handler });
  }

  endRecovery(table: string): void {
    this.recovering.delete(table);
  }

  /** The table could not be opened (`failed`) or opened damaged (`damaged`, refusing writes). */
  setProblem(table: string, state: TableProblem['state'], e: unknown): void {
    this.problems.set(table, { table, state, error: problemError(e) });
  }

  clearProblem(table: string): void {
    this.problems.delete(table);
  }

  problem(table: string): TableProblem | undefined {
    return this.problems.get(table);
  }

  problemTables(): string[] {
    return [...this.problems.keys()];
  }

  /** The LSN a published snapshot must reach before the table has recovered; undefined once it has. */
  recoveryTarget(table: string): Lsn | undefined {
    const r = this.recovering.get(table);
    if (!r) return undefined;
    if ((r.handler.publishedLsn ?? ZERO_LSN) >= r.target || r.handler !== this.current(table)) {
      this.recovering.delete(table);
      return undefined;
    }
    return r.target;
  }

  state(table: string): { state: TableStanding; error?: TableProblem['error'] } {
    const p = this.problems.get(table);
    if (p) return { state: p.state, error: p.error };
    return this.recoveryTarget(table) === undefined ? { state: 'open' } : { state: 'recovering' };
  }

  /** What `GET /health` lists of the tables: problems, and tables still recovering. */
  healthProblems(): WriterHealth['problems'] {
    const out: WriterHealth['problems'] = [...this.problems.values()];
    for (const [table, r] of [...this.recovering]) {
      const target = this.recoveryTarget(table);
      if (target === undefined) continue;
      out.push({
        table,
        state: 'recovering',
        error: {
          code: 'recovering',
          message: `replaying the log: applied LSN ${r.handler.lsn} of ${target}`,
        },
      });
    }
    return out;
  }
}
