/**
 * Where an import reads from: `file:///dir/`, `file:///dir/*.parquet`, `s3://bucket/prefix/`,
 * `s3://bucket/prefix/part-*.csv`. A URI ending in `/` names every file under that folder (its
 * sub-folders too, skipping names that start with `_` or `.`, such as `_SUCCESS`); a last part
 * with `*` or `?` is a glob over the names in that folder (`**` also crosses folders); anything
 * else names one file. Files are read in key order.
 *
 * Local files are read only under the folders `MOONLINK_IMPORT_ROOTS` allows (the service would
 * otherwise read any file its user can, for anyone who can call the API); S3 objects with the
 * service's credentials (on AWS, the writer's role: the stack grants the buckets given to it).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { LocalObjectStore } from '../../store/local-object-store.ts';
import type { ObjectInfo, ObjectStore } from '../../store/object-store.ts';
import { bytesFile, type FileInput, localFile } from '../files/file-batches.ts';

import { ImportSourceError } from './import-errors.ts';

export { ImportSourceError, importRootsFromEnv } from './import-errors.ts';

export interface ImportSourceOptions {
  /** Local folders file:// imports may read from (none: file:// is refused). */
  localRoots: string[];
  /** For s3:// sources: the S3 client settings (region, endpoint, credentials). */
  s3?: S3ClientConfig;
}

export interface SourceFile {
  uri: string;
  size: number;
  open(): Promise<FileInput>;
}

interface Located {
  store: ObjectStore;
  /** The folder (key prefix, '' or ending in '/') the files are listed under. */
  prefix: string;
  /** Matches a key under `prefix` (its full key); undefined: every file (a folder). */
  match?: RegExp;
  /** One file exactly. */
  single?: string;
  uriOf(key: string): string;
}

const GLOB = /[*?]/;

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Splits `a/b/c*.csv` into the folder before the first glob part and the pattern. */
function splitGlob(rest: string): { prefix: string; match?: RegExp; single?: string } {
  const parts = rest.split('/');
  const g = parts.findIndex((p) => GLOB.test(p));
  if (g < 0) {
    if (rest === '' || rest.endsWith('/')) return { prefix: rest };
    return { prefix: rest, single: rest };
  }
  const prefix = parts.slice(0, g).join('/');
  return { prefix: prefix === '' ? '' : `${prefix}/`, match: globToRegExp(rest) };
}

async function locate(uri: string, o: ImportSourceOptions): Promise<Located> {
  if (uri.startsWith('file://')) {
    const p = decodeURIComponent(uri.slice('file://'.length));
    if (!path.isAbsolute(p)) throw new ImportSourceError(`${uri}: a file:// URI takes an absolute path`);
    const roots = await Promise.all(o.localRoots.map((r) => fs.realpath(r).catch(() => path.resolve(r))));
    // The part before any glob must lie under an allowed root (after resolving links).
    const firstGlob = p.split('/').findIndex((x) => GLOB.test(x));
    const fixed = firstGlob < 0 ? p : p.split('/').slice(0, firstGlob).join('/');
    const real = await fs.realpath(fixed.endsWith('/') ? fixed.slice(0, -1) || '/' : fixed).catch(() => {
      throw new ImportSourceError(`${uri}: no such file or folder`);
    });
    const root = roots.find((r) => real === r || real.startsWith(`${r}${path.sep}`));
    if (!root)
      throw new ImportSourceError(
        roots.length === 0
          ? `${uri}: file:// imports are off; set MOONLINK_IMPORT_ROOTS to the folders they may read`
          : `${uri}: not under a folder MOONLINK_IMPORT_ROOTS allows (${roots.join(', ')})`,
      );
    const rest = path.relative(root, real).split(path.sep).join('/');
    const tail = firstGlob < 0 ? (p.endsWith('/') ? '/' : '') : `/${p.split('/').slice(firstGlob).join('/')}`;
    const relative = `${rest}${tail}`.replace(/^\//, '');
    const isDir = firstGlob < 0 && (await fs.stat(real)).isDirectory();
    const spec = splitGlob(isDir && !relative.endsWith('/') && relative !== '' ? `${relative}/` : relative);
    return {
      store: new LocalObjectStore(root),
      ...spec,
      uriOf: (key) => `file://${path.join(root, key)}`,
    };
  }
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m) throw new ImportSourceError(`${uri}: the source must be a file:// or s3:// URI`);
  const [, bucket, rest] = m;
  // The S3 client loads on the first s3:// import (the embedded service would otherwise pay it at
  // every start).
  const { S3ObjectStore } = await import('../../store/s3-object-store.ts');
  return {
    store: new S3ObjectStore({ bucket, prefix: '', clientConfig: o.s3, retry: { maxAttempts: 4 } }),
    ...splitGlob(rest),
    uriOf: (key) => `s3://${bucket}/${key}`,
  };
}

/** Every file the URI names, in key order; an error when there are none. */
export async function listImportFiles(uri: string, o: ImportSourceOptions): Promise<SourceFile[]> {
  const at = await locate(uri, o);
  const found: ObjectInfo[] = [];
  if (at.single !== undefined) {
    const info = await at.store.head(at.single);
    if (!info) throw new ImportSourceError(`${uri}: no such file`);
    found.push(info);
  } else {
    for await (const info of at.store.list(at.prefix)) {
      const rel = info.key.slice(at.prefix.length);
      if (
        at.match
          ? !at.match.test(info.key)
          : rel.split('/').some((x) => x.startsWith('_') || x.startsWith('.'))
      )
        continue;
      found.push(info);
    }
  }
  if (found.length === 0) throw new ImportSourceError(`${uri}: no files match`);
  found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return found.map((info) => ({
    uri: at.uriOf(info.key),
    size: info.size,
    open: async () =>
      at.store instanceof LocalObjectStore
        ? localFile(path.join((at.store as LocalObjectStore).root, info.key))
        : bytesFile(at.uriOf(info.key), await at.store.get(info.key)),
  }));
}
