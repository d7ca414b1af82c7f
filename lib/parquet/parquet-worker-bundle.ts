/**
 * The Parquet pool's worker as the writer's bundle runs it (`npm run build:writer`): the column
 * encoder and the compaction job compiled in, no TypeScript loader at run time.
 */
import * as columnEncoder from '../engine/column-encoder.ts';
import * as compactionJob from '../engine/compaction-job.ts';
import { serveParquetJobs } from './parquet-worker-core.mjs';

serveParquetJobs({
  columnEncoder: Promise.resolve(columnEncoder),
  compactionJob: () => Promise.resolve(compactionJob),
});
