// `npm run build:writer`: the writer container's program as compiled JavaScript (the Dockerfile
// runs it; test/writer-bundle.test.ts starts it against the emulators). Two CommonJS bundles —
// the writer and its Parquet worker thread — and parquet-wasm's .wasm beside them, in
// dist/writer/ (or the folder given as the first argument).
import { copyFileSync, mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.resolve(process.argv[2] ?? path.join(root, 'dist', 'writer'));
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const started = Date.now();
const common = {
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'cjs',
  sourcemap: true,
  minify: false,
  logLevel: 'warning',
  // Optional native bindings of pg and the AWS SDK's optional CRT: not used, not shipped.
  external: ['pg-native', 'aws-crt', '@aws-sdk/signature-v4-crt'],
  // import.meta.url has no meaning in CommonJS: the worker pool takes its script from the
  // environment (below), and nothing else in the writer's graph reads it.
  logOverride: { 'empty-import-meta': 'silent' },
};
await build({
  ...common,
  entryPoints: { 'writer-main': path.join(root, 'lib/aws/writer-main.ts') },
  outdir: out,
  // The pool's worker is the compiled one beside this bundle.
  banner: {
    js: "process.env.MOONLINK_PARQUET_WORKER ??= require('node:path').join(__dirname, 'parquet-worker.js');",
  },
});
await build({
  ...common,
  entryPoints: { 'parquet-worker': path.join(root, 'lib/engine/engine-worker-bundle.ts') },
  outdir: out,
});
// parquet-wasm's Node build reads its .wasm from beside the module that loads it.
copyFileSync(
  path.join(root, 'node_modules/parquet-wasm/node/parquet_wasm_bg.wasm'),
  path.join(out, 'parquet_wasm_bg.wasm'),
);
const size = (f) => (statSync(path.join(out, f)).size / 1024).toFixed(0);
console.log(
  `built ${path.relative(root, out) || out}: writer-main.js ${size('writer-main.js')} KiB, parquet-worker.js ${size('parquet-worker.js')} KiB, parquet_wasm_bg.wasm ${size('parquet_wasm_bg.wasm')} KiB in ${Date.now() - started} ms`,
);
