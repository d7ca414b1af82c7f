// Worker thread: Parquet encode/decode off the table event loops (see worker-pool.ts).
// Messages: { id, op: 'encode', ipc, compression, rowGroupSize, keyValue } | { id, op: 'decode', parquet, columns }
// Replies:  { id, ok: true, bytes } | { id, ok: false, error }
import { parentPort } from 'node:worker_threads';
import { decodeParquet, encodeParquet } from './parquet-codec.mjs';

parentPort.on('message', (msg) => {
  try {
    const bytes = msg.op === 'encode' ? encodeParquet(msg.ipc, msg) : decodeParquet(msg.parquet, msg.columns);
    parentPort.postMessage({ id: msg.id, ok: true, bytes }, [bytes.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, error: String(e?.message ?? e) });
  }
});
