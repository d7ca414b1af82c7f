/**
 * The Lambda entry points as Lambda runs them: modules loaded with the stack's environment,
 * handlers called with API Gateway v2 events, Powertools-style metrics printed in CloudWatch's
 * embedded metric format. (Routes needing AWS calls are covered over the emulators in
 * aws-local.test.ts, through the local adapter that turns HTTP into these same events.)
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const env = {
  MOONLINK_BUCKET: 'bucket',
  MOONLINK_CATALOG_TABLE: 'catalog',
  MOONLINK_STREAM: 'stream',
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  POWERTOOLS_METRICS_NAMESPACE: 'MoonlinkTest',
  LOG_LEVEL: 'SILENT',
};
const saved: Record<string, string | undefined> = {};

beforeAll(() => {
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
});
afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

function event(method: string, path: string, body?: string) {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    requestContext: { http: { method, path, sourceIp: '127.0.0.1' }, requestId: 'req-1' },
    body,
    isBase64Encoded: false,
  } as never;
}

const context = { getRemainingTimeInMillis: () => 3000, functionName: 'f', awsRequestId: 'a' } as never;

describe('Lambda entry points', () => {
  it('answer API Gateway v2 events and publish metrics', async () => {
    const printed: string[] = [];
    // Powertools prints through its own Console on process.stdout.
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      printed.push(...String(chunk).split('\n').filter(Boolean));
      return true;
    });
    try {
      const tables = await import('../functions/lambda/tables.ts');
      const health = await tables.handler(event('GET', '/health'), context);
      expect(health).toMatchObject({ statusCode: 200, body: '{"status":"ok"}' });
      const bad = await tables.handler(
        event('POST', '/tables', '{"name": "x", "columns": [{"name": "a", "type": "varchar"}]}'),
        context,
      );
      expect(bad.statusCode).toBe(400);
      expect(JSON.parse(bad.body as string).error.code).toBe('invalid_schema');
      for (const name of ['ingest', 'read', 'flush']) {
        const mod = await import(`../functions/lambda/${name}.ts`);
        const r = await mod.handler(event('GET', '/not-a-route'), context);
        expect(r.statusCode, name).toBe(404);
      }
    } finally {
      spy.mockRestore();
    }
    const emf = printed
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l))
      .filter((o) => o._aws);
    // One metrics document per invocation, published as it ends.
    expect(emf).toHaveLength(5);
    expect(emf.every((o) => o._aws.CloudWatchMetrics[0].Namespace === 'MoonlinkTest')).toBe(true);
    expect(emf[0]).toMatchObject({ Requests: 1 });
    expect(typeof emf[0].Latency).toBe('number');
    expect(emf.slice(1).every((o) => o.ClientErrors === 1 && o.Requests === undefined)).toBe(true);
  });
});
