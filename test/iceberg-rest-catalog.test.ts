/** The Iceberg REST catalog of the embedded service (`npm start`), driven by outside clients. */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serviceConfigFromEnv } from '../lib/config.ts';
import { startEmbedded } from '../lib/embedded/embedded-service.ts';
import { silentLogger } from '../lib/util/logger.ts';
import { restCatalogContract } from './contract/rest-catalog-contract.ts';

restCatalogContract('embedded', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlrest-'));
  const svc = await startEmbedded(
    serviceConfigFromEnv({
      PORT: '0',
      MOONLINK_DATA_DIR: dir,
      MOONLINK_SNAPSHOT_INTERVAL_MS: '100',
      MOONLINK_COMMIT_INTERVAL_MS: '600000',
    }),
    silentLogger,
  );
  return {
    url: svc.url,
    listKeys: async (prefix) => {
      const keys: string[] = [];
      for await (const o of svc.services.store.list(prefix)) keys.push(o.key);
      return keys;
    },
    close: async () => {
      await svc.close({ flush: false });
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
});
