/**
 * The adapter contracts against the embedded defaults: a local folder, the JSON-file catalog
 * (and its in-memory base), the local append-only log. Each test gets fresh temp folders.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileCatalog, MemoryCatalog } from '../lib/catalog/file-catalog.ts';
import { LocalLog } from '../lib/log/local-log.ts';
import { LocalObjectStore } from '../lib/store/local-object-store.ts';
import { MemoryObjectStore } from '../lib/store/memory-object-store.ts';
import { catalogContract } from './contract/catalog-contract.ts';
import { logContract } from './contract/log-contract.ts';
import { objectStoreContract } from './contract/object-store-contract.ts';

async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'moonlink-contract-'));
  return { dir, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
}

objectStoreContract(
  'LocalObjectStore',
  async () => {
    const { dir, cleanup } = await tempDir();
    return { store: new LocalObjectStore(dir), cleanup };
  },
  // Past 8 MiB a put is written and synced a chunk at a time.
  { largeBodyBytes: 19 * 1024 * 1024 + 17 },
);

objectStoreContract('MemoryObjectStore', async () => ({
  store: new MemoryObjectStore(),
  cleanup: async () => undefined,
}));

catalogContract('FileCatalog', async () => {
  const { dir, cleanup } = await tempDir();
  const catalog = await FileCatalog.open(path.join(dir, 'catalog.json'));
  return {
    catalog,
    cleanup: async () => {
      await catalog.close();
      await cleanup();
    },
  };
});

catalogContract('MemoryCatalog', async () => {
  const catalog = new MemoryCatalog();
  return { catalog, cleanup: () => catalog.close() };
});

logContract('LocalLog', async () => {
  const { dir, cleanup } = await tempDir();
  const log = new LocalLog(dir);
  return {
    log,
    cleanup: async () => {
      await log.close();
      await cleanup();
    },
  };
});
