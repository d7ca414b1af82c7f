/**
 * Outside readers here (icebird, hyparquet) fetch with the global `fetch`, which speaks only
 * http(s). Tables of the embedded service have `file://` locations and those of the emulated
 * AWS deployment `s3://` ones; this shim answers those URLs (GET, HEAD and Range reads) from the
 * local folder or the S3 emulator, and passes every other request through untouched. The reader
 * code itself is not changed.
 */
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type LocationMap = (url: string) => string | undefined;

/** `s3://bucket/key` and icebird's `https://bucket.s3.amazonaws.com/key` → path-style endpoint URL. */
export function s3ToEndpoint(endpoint: string): LocationMap {
  return (url) => {
    const s3 =
      /^s3a?:\/\/([^/]+)\/(.*)$/.exec(url) ?? /^https:\/\/([^/.]+)\.s3\.amazonaws\.com\/(.*)$/.exec(url);
    return s3 ? `${endpoint}/${s3[1]}/${s3[2]}` : undefined;
  };
}

async function fromFile(url: string, init?: RequestInit): Promise<Response> {
  const file = fileURLToPath(url);
  let data: Buffer;
  try {
    data = await fs.readFile(file);
  } catch {
    return new Response('not found', { status: 404 });
  }
  const method = (init?.method ?? 'GET').toUpperCase();
  if (method === 'HEAD')
    return new Response(null, { status: 200, headers: { 'content-length': String(data.length) } });
  const range = new Headers(init?.headers).get('range');
  const m = range ? /^bytes=(\d+)-(\d*)$/.exec(range) : null;
  if (m) {
    const start = Number(m[1]);
    const end = m[2] === '' ? data.length - 1 : Math.min(Number(m[2]), data.length - 1);
    return new Response(data.subarray(start, end + 1), {
      status: 206,
      headers: { 'content-range': `bytes ${start}-${end}/${data.length}` },
    });
  }
  return new Response(data, { status: 200, headers: { 'content-length': String(data.length) } });
}

/** Installs the shim; returns the function that removes it. */
export function installLocationFetch(map: LocationMap = () => undefined): () => void {
  const original = globalThis.fetch;
  globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (url.startsWith('file://')) return fromFile(url, init);
    const mapped = map(url);
    return original(mapped ?? input, init);
  }) as typeof fetch;
  return () => {
    globalThis.fetch = original;
  };
}
