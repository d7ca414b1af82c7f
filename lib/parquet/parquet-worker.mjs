// Worker thread of the Parquet pool as the sources run (see parquet-worker-core.mjs). The job
// modules the pool registered (workerData.jobModules: name → { href, eager }) are TypeScript,
// loaded through tsx (a worker does not inherit `node --import tsx` for the modules it loads).
// Loading takes about half a second, so an eager one (the column encoder, needed by the first
// flush) starts loading as the worker starts; the others on their first job.
import { workerData } from 'node:worker_threads';
import { serveParquetJobs } from './parquet-worker-core.mjs';

const modules = workerData?.jobModules ?? {};
let tsx;
const loaded = new Map();

function load(name) {
  const m = modules[name];
  if (!m) return Promise.reject(new Error(`no job "${name}" is registered in this worker`));
  let p = loaded.get(name);
  if (!p) {
    tsx ??= import('tsx/esm/api');
    p = tsx.then(({ tsImport }) => tsImport(m.href, import.meta.url)).then((mod) => mod.workerJob);
    loaded.set(name, p);
  }
  return p;
}

serveParquetJobs(
  load,
  Object.entries(modules)
    .filter(([, m]) => m.eager)
    .map(([name]) => name),
);
