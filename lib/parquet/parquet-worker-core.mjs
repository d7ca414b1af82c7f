// Worker thread: Parquet encode/decode off the table event loops (see worker-pool.ts), the part
// shared by the worker as the sources run it (parquet-worker.mjs, TypeScript through tsx) and
// as the writer's bundle runs it (parquet-worker-bundle.ts, everything compiled in).
// Messages: { id, op: 'encode', ipc, compression, rowGroupSize, keyValue } | { id, op: 'decode', parquet, columns }
//         | { id, op: 'columns', job } (MemSlice column images → Parquet + stats, column-encoder.ts)
//         | { id, op: 'compact', compaction } (a compaction's CPU work, compaction-job.ts)
// Replies:  { id, ok: true, bytes?, stats?, result? } | { id, ok: false, error }, then { held }
//           (the thread's heap + external memory after the job, see worker-pool.ts)
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { decodeParquet, encodeParquet } from './parquet-codec.mjs';

/** What this thread holds now: its V8 heap and the memory outside it (buffers, WebAssembly). */
function held() {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

// A full collection after a compaction: it leaves hundreds of megabytes of buffers behind as
// garbage, which V8 would only collect when this thread next allocates (the memory stays
// resident until then, and counts against the writer's budget). V8's own gc(), reached the
// documented way (v8.setFlagsFromString, then a new context's global); workers cannot take
// --expose-gc as an option.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc');

let loaders;
let compactionJob;

async function reply(msg) {
  try {
    if (msg.op === 'compact') {
      compactionJob ??= loaders.compactionJob();
      const job = await compactionJob;
      const result = await job.compactFiles(msg.compaction);
      parentPort.postMessage({ id: msg.id, ok: true, result }, job.resultBuffers(result));
      return;
    }
    if (msg.op === 'columns') {
      const encoder = await loaders.columnEncoder;
      const result = await encoder.encodeColumns(msg.job);
      const { bytes, stats, run, groups } = result;
      parentPort.postMessage(
        { id: msg.id, ok: true, bytes, stats, run, groups },
        encoder.resultTransfer(result),
      );
      return;
    }
    const bytes = msg.op === 'encode' ? encodeParquet(msg.ipc, msg) : decodeParquet(msg.parquet, msg.columns);
    parentPort.postMessage({ id: msg.id, ok: true, bytes }, [bytes.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, error: String(e?.message ?? e) });
  }
}

/**
 * Serves the pool's jobs on this thread. `loaders.columnEncoder` is the column encoder module
 * (a promise, started at once: it is needed by the first flush); `loaders.compactionJob()`
 * loads the compaction module on the first compaction (most workers never compact).
 */
export function serveParquetJobs(given) {
  loaders = given;
  loaders.columnEncoder.catch(() => undefined); // reported by the first job that needs it
  parentPort.on('message', onMessage);
}

async function onMessage(msg) {
  const compaction = msg.op === 'compact';
  await reply(msg);
  // After each reply, what the thread still holds ({ held } alone), once a compaction's
  // garbage is collected: the pool counts it against the writer's memory budget.
  msg = undefined;
  if (compaction) collect();
  parentPort.postMessage({ held: held() });
}
