// Worker thread: Parquet encode/decode off the table event loops (see worker-pool.ts).
// Messages: { id, op: 'encode', ipc, compression, rowGroupSize, keyValue } | { id, op: 'decode', parquet, columns }
//         | { id, op: 'columns', job } (MemSlice column images → Parquet + stats, column-encoder.ts)
//         | { id, op: 'compact', compaction } (a compaction's CPU work, compaction-job.ts)
// Replies:  { id, ok: true, bytes?, stats?, result? } | { id, ok: false, error }
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

parentPort.on('message', async (msg) => {
  try {
    if (msg.op === 'compact') {
      compactionJob ??= import('tsx/esm/api').then(({ tsImport }) =>
        tsImport('../engine/compaction-job.ts', import.meta.url),
      );
      const job = await compactionJob;
      const result = job.compactFiles(msg.compaction);
      parentPort.postMessage({ id: msg.id, ok: true, result }, job.resultBuffers(result));
      return;
    }
    if (msg.op === 'columns') {
      const encoder = await columnEncoder;
      const result = encoder.encodeColumns(msg.job);
      const { bytes, stats, run } = result;
      parentPort.postMessage({ id: msg.id, ok: true, bytes, stats, run }, encoder.resultTransfer(result));
      return;
    }
    const bytes = msg.op === 'encode' ? encodeParquet(msg.ipc, msg) : decodeParquet(msg.parquet, msg.columns);
    parentPort.postMessage({ id: msg.id, ok: true, bytes }, [bytes.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, error: String(e?.message ?? e) });
  }
});
