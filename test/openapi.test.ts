/**
 * The OpenAPI document (functions/openapi.ts) against the routes that exist (functions/api.ts):
 * every route documented, nothing documented that is not served; the copy in the repository
 * (docs/openapi.json) is the same document; the embedded service serves it.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROUTES } from '../functions/all-routes.ts';
import { OPENAPI } from '../functions/openapi.ts';
import { serviceConfigFromEnv } from '../lib/config.ts';
import { startEmbedded } from '../lib/embedded/embedded-service.ts';
import { silentLogger } from '../lib/util/logger.ts';

const METHODS = ['get', 'post', 'put', 'delete', 'head', 'patch'];

describe('OpenAPI document', () => {
  it('documents exactly the routes that are served', () => {
    const served = Object.values(ROUTES)
      .flat()
      .map((r) => `${r.method} ${r.path.replace('{proxy+}', '{proxy}')}`)
      .sort();
    const documented = Object.entries(OPENAPI.paths)
      .flatMap(([p, ops]) =>
        Object.keys(ops)
          .filter((m) => METHODS.includes(m))
          .map((m) => `${m.toUpperCase()} ${p}`),
      )
      .sort();
    expect(documented).toEqual(served);
    // Path parameters are declared where they are used.
    for (const [p, ops] of Object.entries(OPENAPI.paths)) {
      const names = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      for (const [m, op] of Object.entries(ops)) {
        if (!METHODS.includes(m)) continue;
        const params = [
          ...(((ops as { parameters?: { name: string; in: string }[] }).parameters ?? []) as {
            name: string;
            in: string;
          }[]),
          ...(((op as { parameters?: { name: string; in: string }[] }).parameters ?? []) as {
            name: string;
            in: string;
          }[]),
        ];
        expect(
          params
            .filter((x) => x.in === 'path')
            .map((x) => x.name)
            .sort(),
          `${m} ${p}`,
        ).toEqual(names);
      }
    }
  });

  it('the copy in the repository is the same document (regenerate: npm run openapi)', async () => {
    const file = JSON.parse(await fs.readFile(new URL('../docs/openapi.json', import.meta.url), 'utf8'));
    expect(file).toEqual(JSON.parse(JSON.stringify(OPENAPI)));
  });

  it('is served at GET /openapi.json', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlopenapi-'));
    const svc = await startEmbedded(
      serviceConfigFromEnv({ PORT: '0', MOONLINK_DATA_DIR: dir }),
      silentLogger,
    );
    try {
      const res = await fetch(`${svc.url}/openapi.json`);
      expect(res.status).toBe(200);
      const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
      expect(doc.openapi).toBe('3.1.0');
      expect(Object.keys(doc.paths)).toContain('/tables/{name}/rows');
    } finally {
      await svc.close({ flush: false });
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
