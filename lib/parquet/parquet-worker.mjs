// Worker thread: Parquet encode/decode off the table event loops (see worker-pool.ts).
// Messages: { id, op: 'encode', ipc, compression, rowGroupSize, keyValue } | { id, op: 'decode', parquet, columns }
//         | { id, op: 'columns', job } (MemSlice column images → Parquet + stats, column-encoder.ts)
//         | { id, op: 'compact', compaction } (a compaction's CPU work, compaction-job.ts)
// Replies:  { id, ok: true, bytes?, stats?, result? } | { id, ok: false, error }, then { held }
//           (the thread's heap + external memory after the job, see worker-pool.ts)
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { decodeParquet, encodeParquet } from './parquet-codec.mjs';

// The column encoder is TypeScript, loaded through tsx (a worker does not inherit
// `node --import tsx` for the modules it loads). Loading takes about half a second, so it
// starts as the worker starts, not when the first flush waits for it.
const columnEncoder = import('tsx/esm/api').then(({ tsImport }) =>
  tsImport('../engine/column-encoder.ts', import.meta.url),
);
columnEncoder.catch(() => undefined); // reported by the first job that needs it
// Loaded on the first compaction (most workers never compact).
let compactionJob;

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

async function reply(msg) {
  try {
    if (msg.op === 'compact') {
      compactionJob ??= import('tsx/esm/api').then(({ tsImport }) =>
        tsImport('../engine/compaction-job.ts', import.meta.url),
      );
      const job = await compactionJob;
      const result = await job.compactFiles(msg.compaction);
      parentPort.postMessage({ id: msg.id, ok: true, result }, job.resultBuffers(result));
      return;
    }
    if (msg.op === 'columns') {
      const encoder = await columnEncoder;
      const result = await encoder.encodeColumns(msg.job);
      const { bytes, stats, run } = result;
      parentPort.postMessage({ id: msg.id, ok: true, bytes, stats, run }, encoder.resultTransfer(result));
      return;
    }
    const bytes = msg.op === 'encode' ? encodeParquet(msg.ipc, msg) : decodeParquet(msg.parquet, msg.columns);
    parentPort.postMessage({ id: msg.id, ok: true, bytes }, [bytes.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, error: String(e?.message ?? e) });
  }
}

parentPort.on('message', async (msg) => {
  const compaction = msg.op === 'compact';
  await reply(msg);
  // After each reply, what the thread still holds ({ held } alone), once a compaction's
  // garbage is collected: the pool counts it against the writer's memory budget.
  msg = undefined;
  if (compaction) collect();
  parentPort.postMessage({ held: held() });
});
