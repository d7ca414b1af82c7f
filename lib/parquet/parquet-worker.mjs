// Worker thread: Parquet encode/decode with parquet-wasm, off the table event loops.
// Plain JavaScript so it runs under node, tsx and vitest alike without a loader.
// Messages: { id, op: 'encode', ipc: Uint8Array, compression, rowGroupSize, keyValue }
//           { id, op: 'decode', parquet: Uint8Array, columns?: string[] }
// Replies:  { id, ok: true, bytes: Uint8Array } | { id, ok: false, error: string }
import { parentPort } from 'node:worker_threads';
import * as pw from 'parquet-wasm/node';

const COMPRESSION = {
  zstd: pw.Compression.ZSTD,
  snappy: pw.Compression.SNAPPY,
  lz4: pw.Compression.LZ4_RAW,
  none: pw.Compression.UNCOMPRESSED,
};

function encode(msg) {
  let builder = new pw.WriterPropertiesBuilder()
    .setCompression(COMPRESSION[msg.compression] ?? pw.Compression.ZSTD)
    .setCreatedBy('moonlink-serverless')
    .setMaxRowGroupSize(msg.rowGroupSize ?? 122880);
  if (msg.keyValue && Object.keys(msg.keyValue).length > 0) {
    builder = builder.setKeyValueMetadata(new Map(Object.entries(msg.keyValue)));
  }
  const table = pw.Table.fromIPCStream(msg.ipc);
  return pw.writeParquet(table, builder.build());
}

function decode(msg) {
  const options = msg.columns ? { columns: msg.columns } : undefined;
  return pw.readParquet(msg.parquet, options).intoIPCStream();
}

parentPort.on('message', (msg) => {
  try {
    const bytes = msg.op === 'encode' ? encode(msg) : decode(msg);
    parentPort.postMessage({ id: msg.id, ok: true, bytes }, [bytes.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, error: String(e?.message ?? e) });
  }
});
