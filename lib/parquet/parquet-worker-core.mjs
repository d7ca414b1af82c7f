// Worker thread: Parquet encode/decode off the table event loops (see worker-pool.ts), and the
// jobs higher layers register (the engine's column encoder and compaction, lib/engine/worker-jobs.ts).
// The part shared by the worker as the sources run it (parquet-worker.mjs, job modules loaded
// through tsx) and as the writer's bundle runs it (lib/engine/engine-worker-bundle.ts, compiled in).
// Messages: { id, op: 'encode', ipc, compression, rowGroupSize, keyValue } | { id, op: 'decode', parquet, columns }
//         | { id, op: <job name>, long?, ...payload } (a registered job: `run(message)`)
//         | { op: 'ready' } (asked by the pool as the thread starts)
// Replies:  { id, ok: true, reply } | { id, ok: false, error }, then { held }; { ready: true }
//           (the thread's heap + external memory after the job, see worker-pool.ts)
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { decodeParquet, encodeParquet } from './parquet-codec.mjs';

/** What this thread holds now: its V8 heap and the memory outside it (buffers, WebAssembly). */
function held() {
  // This thread's heap and external memory (WebAssembly included), as process.memoryUsage()
  // counts them, without its cost (~0.3 ms a call in a busy worker: it also reads the RSS).
  const h = getHeapStatistics();
  return h.used_heap_size + h.external_memory;
}

// A full collection after a compaction: it leaves hundreds of megabytes of buffers behind as
// garbage, which V8 would only collect when this thread next allocates (the memory stays
// resident until then, and counts against the writer's budget). V8's own gc(), reached the
// documented way (v8.setFlagsFromString, then a new context's global); workers cannot take
// --expose-gc as an option.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc');

let loadJob;

async function reply(msg) {
  try {
    if (msg.op === 'encode' || msg.op === 'decode') {
      const bytes =
        msg.op === 'encode' ? encodeParquet(msg.ipc, msg) : decodeParquet(msg.parquet, msg.columns);
      parentPort.postMessage({ id: msg.id, ok: true, reply: { bytes } }, [bytes.buffer]);
      return;
    }
    const job = await loadJob(msg.op);
    const result = await job.run(msg);
    parentPort.postMessage({ id: msg.id, ok: true, reply: result }, job.transfer(result));
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, error: String(e?.message ?? e) });
  }
}

/** Job names this thread loads as it starts (see onMessage's 'ready'). */
let eagerJobs = [];

/**
 * Serves the pool's jobs on this thread: encode and decode, and the registered jobs that
 * `load(name)` resolves to `{ run(message), transfer(result) }`; `eager` names those that
 * start loading now.
 */
export function serveParquetJobs(load, eager = []) {
  loadJob = load;
  eagerJobs = eager;
  for (const name of eager) load(name).catch(() => undefined); // reported by the first job that needs it
  parentPort.on('message', onMessage);
}

async function onMessage(msg) {
  if (msg.op === 'ready') {
    // The pool asks as the thread starts: answered once the eager jobs are loaded (or failed to,
    // which the first job that needs one reports).
    await Promise.allSettled(eagerJobs.map((name) => loadJob(name)));
    parentPort.postMessage({ ready: true });
    return;
  }
  const long = msg.long === true;
  await reply(msg);
  // After each reply, what the thread still holds ({ held } alone), once a long job's garbage
  // (a compaction's) is collected: the pool counts it against the writer's memory budget.
  msg = undefined;
  if (long) collect();
  parentPort.postMessage({ held: held() });
}
