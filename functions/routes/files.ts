/**
 * `GET /files/{key}`: the embedded service serves its data folder, so snapshot URLs work with
 * any HTTP client (S3 presigned URLs take this role on AWS). Range requests are supported.
 */
import { assertSafeKey, NotFoundError } from '../../lib/store/object-store.ts';
import { notFound } from '../api-error.ts';
import { type HttpEvent, type HttpResult, header } from '../http.ts';
import type { Services } from '../services.ts';

export async function fileRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const key = decodeURIComponent(event.pathParameters?.proxy ?? '');
  try {
    assertSafeKey(key);
  } catch {
    throw notFound(`file "${key}"`);
  }
  if (!key.startsWith('tables/') && !key.startsWith('tmp/tables/')) throw notFound(`file "${key}"`);
  const info = await s.store.head(key);
  if (!info) throw notFound(`file "${key}"`);
  const range = /^bytes=(\d*)-(\d*)$/.exec(header(event, 'range') ?? '');
  try {
    if (range && (range[1] !== '' || range[2] !== '')) {
      let start = range[1] === '' ? Math.max(0, info.size - Number(range[2])) : Number(range[1]);
      let end = range[1] === '' || range[2] === '' ? info.size - 1 : Number(range[2]);
      end = Math.min(end, info.size - 1);
      start = Math.min(start, info.size);
      const body = await s.store.getRange(key, start, Math.max(0, end - start + 1));
      return {
        statusCode: 206,
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `bytes ${start}-${end}/${info.size}`,
          'accept-ranges': 'bytes',
        },
        body: Buffer.from(body).toString('base64'),
        isBase64Encoded: true,
      };
    }
    const body = await s.store.get(key);
    return {
      statusCode: 200,
      headers: { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' },
      body: Buffer.from(body).toString('base64'),
      isBase64Encoded: true,
    };
  } catch (e) {
    if (e instanceof NotFoundError) throw notFound(`file "${key}"`);
    throw e;
  }
}
