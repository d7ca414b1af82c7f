/**
 * `npm run bench:lambda`: bundles each function as `cdk deploy` does (esbuild, CommonJS,
 * node22, minified, parquet-wasm's .wasm beside the bundle), reports bundle sizes, and measures
 * a cold start locally: a fresh Node process loading the bundle and answering its first
 * request (GET /health for the tables function; a request the handler rejects without AWS calls
 * for the others), plus loading parquet-wasm for the read function's first scan.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';

const ROOT = path.resolve(import.meta.dirname, '..');
const out = await fs.mkdtemp(path.join(os.tmpdir(), 'mllambda-'));
const functions = ['ingest', 'tables', 'read', 'flush'];
const env = {
  ...process.env,
  MOONLINK_BUCKET: 'b',
  MOONLINK_CATALOG_TABLE: 't',
  MOONLINK_STREAM: 's',
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'x',
  AWS_SECRET_ACCESS_KEY: 'x',
  LOG_LEVEL: 'ERROR',
};

const probe = (file: string, fn: string): string => `
const t0 = performance.now();
const { handler } = require(${JSON.stringify(file)});
const t1 = performance.now();
const route = ${JSON.stringify(fn === 'tables' ? 'GET /health' : 'GET /nope')};
const [method, p] = route.split(' ');
const event = { version: '2.0', routeKey: '$default', rawPath: p, rawQueryString: '', headers: {}, requestContext: { http: { method, path: p, sourceIp: '127.0.0.1' }, requestId: 'r' }, isBase64Encoded: false };
handler(event, { getRemainingTimeInMillis: () => 3000 }).then(async (r) => {
  const t2 = performance.now();
  let wasm = 0;
  if (${JSON.stringify(fn)} === 'read') {
    const w0 = performance.now();
    require(${JSON.stringify(path.join(out, 'wasm-probe.js'))});
    wasm = performance.now() - w0;
  }
  console.log(JSON.stringify({ status: r.statusCode, loadMs: t1 - t0, firstRequestMs: t2 - t1, parquetWasmMs: wasm }));
});`;

const rows: Record<string, unknown>[] = [];
for (const fn of functions) {
  const dir = path.join(out, fn);
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, 'index.js');
  await build({
    entryPoints: [path.join(ROOT, 'functions', 'lambda', `${fn}.ts`)],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    minify: true,
    sourcemap: false,
    outfile: file,
    logLevel: 'error',
  });
  await fs.copyFile(
    path.join(ROOT, 'node_modules/parquet-wasm/node/parquet_wasm_bg.wasm'),
    path.join(dir, 'parquet_wasm_bg.wasm'),
  );
  const size = (await fs.stat(file)).size;
  const wasm = (await fs.stat(path.join(dir, 'parquet_wasm_bg.wasm'))).size;
  if (fn === 'read') {
    await build({
      entryPoints: [path.join(ROOT, 'lib', 'parquet', 'parquet-codec.mjs')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      outfile: path.join(out, 'wasm-probe.js'),
      logLevel: 'error',
    });
    await fs.copyFile(
      path.join(ROOT, 'node_modules/parquet-wasm/node/parquet_wasm_bg.wasm'),
      path.join(out, 'parquet_wasm_bg.wasm'),
    );
  }
  const runs: Record<string, number>[] = [];
  for (let i = 0; i < 5; i++) {
    const r = spawnSync(process.execPath, ['-e', probe(file, fn)], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${fn}: ${r.stderr}`);
    runs.push(JSON.parse(r.stdout.trim().split('\n').pop()!));
  }
  const med = (k: string) => runs.map((x) => x[k] as number).sort((a, b) => a - b)[2];
  const row = {
    function: fn,
    bundleKiB: Math.round(size / 1024),
    wasmKiB: Math.round(wasm / 1024),
    coldLoadMs: +med('loadMs').toFixed(1),
    firstRequestMs: +med('firstRequestMs').toFixed(1),
    ...(fn === 'read' ? { parquetWasmLoadMs: +med('parquetWasmMs').toFixed(1) } : {}),
    status: runs[0].status,
  };
  rows.push(row);
  console.log(JSON.stringify(row));
}
await fs.rm(out, { recursive: true, force: true });
console.log(
  `\n${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, Node ${process.version} (Lambda runs Node 22; medians of 5 fresh processes)`,
);
