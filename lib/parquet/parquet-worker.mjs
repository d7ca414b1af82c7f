// Worker thread of the Parquet pool as the sources run (see parquet-worker-core.mjs). The column
// encoder and the compaction job are TypeScript, loaded through tsx (a worker does not inherit
// `node --import tsx` for the modules it loads). Loading takes about half a second, so the
// encoder starts loading as the worker starts, not when the first flush waits for it.
import { serveParquetJobs } from './parquet-worker-core.mjs';

const tsx = import('tsx/esm/api');
serveParquetJobs({
  columnEncoder: tsx.then(({ tsImport }) => tsImport('../engine/column-encoder.ts', import.meta.url)),
  compactionJob: () => tsx.then(({ tsImport }) => tsImport('../engine/compaction-job.ts', import.meta.url)),
});
