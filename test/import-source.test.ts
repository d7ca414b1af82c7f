/**
 * Import sources (lib/sources/import/import-source.ts): s3:// folders and globs against s3rver
 * (paged listing, the emulator's endpoint settings), file:// under MOONLINK_IMPORT_ROOTS only.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImportSourceError, listImportFiles } from '../lib/sources/import/import-source.ts';
import { type Emulators, startEmulators, uniqueName } from '../localstack/emulators.ts';

let emu: Emulators;
let local: string;
beforeAll(async () => {
  emu = await startEmulators({ kinesisShards: 1 });
  local = await fs.mkdtemp(path.join(os.tmpdir(), 'mlsrc-'));
}, 60_000);
afterAll(async () => {
  await emu?.stop();
  await fs.rm(local, { recursive: true, force: true });
});

const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('import sources', () => {
  it('s3://: a folder (skipping _ and . names), a glob, one object; bytes as stored', async () => {
    const prefix = uniqueName('src');
    const keys = ['a/1.csv', 'a/2.csv', 'a/sub/3.csv', 'a/_SUCCESS', 'a/.hidden', 'a/x.ndjson', 'b/1.csv'];
    for (const k of keys)
      await emu.clients.s3.send(
        new PutObjectCommand({ Bucket: emu.s3.bucket, Key: `${prefix}/${k}`, Body: `body of ${k}` }),
      );
    const s3 = {
      region: 'us-east-1',
      endpoint: emu.s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED' as const,
      responseChecksumValidation: 'WHEN_REQUIRED' as const,
    };
    const base = `s3://${emu.s3.bucket}/${prefix}`;
    const folder = await listImportFiles(`${base}/a/`, { localRoots: [], s3 });
    expect(folder.map((f) => f.uri)).toEqual(
      ['a/1.csv', 'a/2.csv', 'a/sub/3.csv', 'a/x.ndjson'].map((k) => `${base}/${k}`),
    );
    const glob = await listImportFiles(`${base}/a/*.csv`, { localRoots: [], s3 });
    expect(glob.map((f) => f.uri)).toEqual([`${base}/a/1.csv`, `${base}/a/2.csv`]);
    const deep = await listImportFiles(`${base}/**/*.csv`, { localRoots: [], s3 });
    expect(deep).toHaveLength(4);
    const one = await listImportFiles(`${base}/b/1.csv`, { localRoots: [], s3 });
    expect(one).toHaveLength(1);
    expect(dec(await (await one[0].open()).bytes())).toBe('body of b/1.csv');
    await expect(listImportFiles(`${base}/c/`, { localRoots: [], s3 })).rejects.toBeInstanceOf(
      ImportSourceError,
    );
  });

  it('file://: only under an allowed root (links resolved), folders and globs', async () => {
    await fs.mkdir(path.join(local, 'in', 'deep'), { recursive: true });
    await fs.writeFile(path.join(local, 'in', 'x.csv'), 'id\n1\n');
    await fs.writeFile(path.join(local, 'in', 'deep', 'y.csv'), 'id\n2\n');
    await fs.writeFile(path.join(local, 'secret.csv'), 'id\n3\n');
    await fs.symlink(path.join(local, 'secret.csv'), path.join(local, 'in', 'link.csv'));
    const roots = [path.join(local, 'in')];
    const all = await listImportFiles(`file://${local}/in`, { localRoots: roots });
    // In key order; the link (to a file outside the root) is not followed by a folder listing.
    expect(all.map((f) => f.uri)).toEqual([`file://${local}/in/deep/y.csv`, `file://${local}/in/x.csv`]);
    expect(
      (await listImportFiles(`file://${local}/in/*.csv`, { localRoots: roots })).map((f) =>
        path.basename(f.uri),
      ),
    ).toContain('x.csv');
    await expect(listImportFiles(`file://${local}/secret.csv`, { localRoots: roots })).rejects.toThrow(
      /MOONLINK_IMPORT_ROOTS/,
    );
    await expect(listImportFiles(`file://${local}/in/link.csv`, { localRoots: roots })).rejects.toThrow(
      /MOONLINK_IMPORT_ROOTS/,
    );
    await expect(listImportFiles(`file://${local}/in/x.csv`, { localRoots: [] })).rejects.toThrow(
      /imports are off/,
    );
    await expect(listImportFiles('file://relative/x.csv', { localRoots: roots })).rejects.toThrow(/absolute/);
  });
});
