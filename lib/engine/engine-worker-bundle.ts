/**
 * The Parquet pool's worker as the writer's bundle runs it (`npm run build:writer`): the
 * engine's jobs (worker-jobs.ts) compiled in, no TypeScript loader at run time.
 */
import { serveParquetJobs } from '../parquet/parquet-worker-core.mjs';
import { workerJob as decode } from '../txn/decode-job.ts';
import { workerJob as columns } from './column-encoder.ts';
import { workerJob as compact } from './compaction-job.ts';

const jobs: Record<string, unknown> = { columns, compact, 'decode-request': decode };

serveParquetJobs((name: string) =>
  name in jobs ? Promise.resolve(jobs[name]) : Promise.reject(new Error(`no job "${name}" in this worker`)),
);
