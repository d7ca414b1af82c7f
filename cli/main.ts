/**
 * `moonlink`: a command-line client of the public API.
 *
 *   moonlink load FILE… --table T [--format csv|ndjson|parquet|arrow] [--op insert|upsert|delete]
 *                       [--batch-rows N] [--create [--key a,b] [--schema name:type,…]
 *                       [--partition-by 'day(at),bucket[16](id)'] [--sort-by 'at desc,id']] [--skip-rows N]
 *   moonlink tables | describe T | flush T | rename T NEW
 *   moonlink alter T [--drop C] [--rename C=NEW] [--widen C:TYPE] [--nullable C] [--add C:TYPE] (each repeatable)
 *   moonlink alter T --partition-by 'month(at)' (with column changes or alone; '' for unpartitioned)
 *   moonlink import T URI [--format parquet|arrow|csv|ndjson] [--op insert|upsert] [--no-wait]
 *   moonlink scan T [--format ndjson|csv|parquet] [--limit N] [--min-lsn L] [--filter EXPR] [--out FILE]
 *
 * Every command takes --url (default MOONLINK_URL or http://127.0.0.1:8080), --token (or
 * MOONLINK_API_TOKEN) and --aws (SigV4 for the deployed HTTP API). Exit status 0 on success, 1
 * with the server's message on failure, 2 for bad usage.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as arrow from 'apache-arrow';
import { encodeParquet } from '../lib/parquet/parquet-codec.mjs';
import {
  arrowSchemaOf,
  type Column,
  columnsFromArrow,
  fileBatches,
  formatOf,
  parseSchemaOption,
} from '../lib/sources/files/file-batches.ts';
import { Client, regionOf, ServiceError } from './http-client.ts';
import { Progress } from './progress.ts';

const USAGE = `usage:
  moonlink load FILE... --table T [--format csv|ndjson|parquet|arrow] [--op insert|upsert|delete]
                        [--batch-rows N] [--create [--key a,b] [--schema name:type,...]
                        [--partition-by 'day(at),bucket[16](id)'] [--sort-by 'at desc,id']] [--skip-rows N]
  moonlink tables
  moonlink describe T
  moonlink scan T [--format ndjson|csv|parquet] [--limit N] [--min-lsn L] [--filter 'at>=2024-05-01,id=7'] [--out FILE]
  moonlink flush T
  moonlink rename T NEW
  moonlink alter T [--drop C] [--rename C=NEW] [--widen C:TYPE] [--nullable C] [--add C:TYPE]  (repeatable; one change, all or nothing)
  moonlink alter T --partition-by 'month(at),region'  (with column changes or alone; '' for unpartitioned)
  moonlink import T URI [--format parquet|arrow|csv|ndjson] [--op insert|upsert] [--no-wait]
options: --url URL (MOONLINK_URL, default http://127.0.0.1:8080)  --token TOKEN (MOONLINK_API_TOKEN)  --aws (SigV4)`;

class UsageError extends Error {}

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    process.stderr.write(`moonlink: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { command, args, values } = parsed;
  const url = values.url ?? process.env.MOONLINK_URL ?? 'http://127.0.0.1:8080';
  const client = new Client({
    url,
    token: values.token ?? process.env.MOONLINK_API_TOKEN,
    aws: values.aws ? { region: regionOf(url) } : undefined,
  });
  try {
    switch (command) {
      case 'load':
        return await load(client, args, values);
      case 'tables': {
        const r = await client.json('GET', 'tables');
        for (const t of r.tables as { name: string; columns: unknown[]; primaryKey: string[] }[])
          out(`${t.name}\t${t.columns.length} columns\tkey: ${t.primaryKey.join(',') || '-'}`);
        return 0;
      }
      case 'describe':
        out(JSON.stringify(await client.json('GET', `tables/${one(args, 'describe')}`), null, 2));
        return 0;
      case 'flush': {
        const r = await client.json('POST', `tables/${one(args, 'flush')}/flush`);
        out(`committed through LSN ${r.lsn}: ${r.metadataLocation}`);
        return 0;
      }
      case 'rename': {
        if (args.length !== 2) throw new UsageError('rename takes a table and its new name');
        const r = await client.json('POST', `tables/${args[0]}/rename`, { name: args[1] });
        out(`renamed ${r.renamedFrom} to ${r.name} (its files stay at ${r.metadataLocation})`);
        return 0;
      }
      case 'alter': {
        const table = one(args, 'alter');
        if (values['partition-by'] !== undefined) {
          const partitionBy = partitionByOption(values['partition-by']);
          const changes = [
            ...(alterCount(values) > 0 ? alterChanges(values) : []),
            { action: 'set-partitioning', partitionBy },
          ];
          const r = await client.json('POST', `tables/${table}/schema`, { changes });
          const fields = r.partitionBy as { column: string; transform: string; name: string }[];
          out(`${table}: schema ${r.schemaId}, partition spec ${r.partitionSpecId}${fields.length === 0 ? ' (unpartitioned)' : ''}`);
          for (const f of fields) out(`  ${f.name}\t${f.transform}(${f.column})`);
          return 0;
        }
        const r = await client.json('POST', `tables/${table}/schema`, { changes: alterChanges(values) });
        out(`${table}: schema ${r.schemaId} at LSN ${r.lsn}`);
        for (const c of r.columns as { name: string; type: string; nullable: boolean }[])
          out(`  ${c.name}\t${c.type}${c.nullable ? '' : ' not null'}`);
        return 0;
      }
      case 'import':
        return await importFiles(client, args, values);
      case 'scan':
        return await scan(client, one(args, 'scan'), values);
      case 'help':
      case undefined:
        out(USAGE);
        return command ? 0 : 2;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`moonlink: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`moonlink: ${(e as Error).message}\n`);
    return 1;
  }
}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      aws: { type: 'boolean' },
      table: { type: 'string', short: 't' },
      format: { type: 'string', short: 'f' },
      op: { type: 'string' },
      'batch-rows': { type: 'string' },
      create: { type: 'boolean' },
      key: { type: 'string' },
      schema: { type: 'string' },
      'skip-rows': { type: 'string' },
      limit: { type: 'string' },
      'min-lsn': { type: 'string' },
      out: { type: 'string', short: 'o' },
      'no-wait': { type: 'boolean' },
      'partition-by': { type: 'string' },
      'sort-by': { type: 'string' },
      filter: { type: 'string' },
      add: { type: 'string', multiple: true },
      drop: { type: 'string', multiple: true },
      rename: { type: 'string', multiple: true },
      widen: { type: 'string', multiple: true },
      nullable: { type: 'string', multiple: true },
    },
  });
  return { command: positionals[0], args: positionals.slice(1), values };
}

type Values = ReturnType<typeof parse>['values'];

/**
 * The schema changes of `moonlink alter`, in this order: drops, renames, widenings, nullables,
 * adds (so a dropped name can be added again with another type in one change).
 */
function alterChanges(values: Values): Record<string, unknown>[] {
  const split = (v: string, sep: string, what: string): [string, string] => {
    const at = v.indexOf(sep);
    if (at <= 0 || at === v.length - 1) throw new UsageError(`--${what} takes ${what === 'rename' ? 'C=NEW' : 'C:TYPE'}, got "${v}"`);
    return [v.slice(0, at), v.slice(at + 1)];
  };
  const changes = [
    ...(values.drop ?? []).map((name) => ({ action: 'drop-column', name })),
    ...(values.rename ?? []).map((v) => {
      const [name, newName] = split(v, '=', 'rename');
      return { action: 'rename-column', name, newName };
    }),
    ...(values.widen ?? []).map((v) => {
      const [name, type] = split(v, ':', 'widen');
      return { action: 'widen-column', name, type };
    }),
    ...(values.nullable ?? []).map((name) => ({ action: 'make-nullable', name })),
    ...(values.add ?? []).map((v) => {
      const [name, type] = split(v, ':', 'add');
      return { action: 'add-column', name, type };
    }),
  ];
  if (changes.length === 0) throw new UsageError('alter takes at least one of --add, --drop, --rename, --widen, --nullable');
  return changes;
}

function alterCount(values: Values): number {
  return ['add', 'drop', 'rename', 'widen', 'nullable'].reduce(
    (n, k) => n + ((values[k as 'add'] as string[] | undefined)?.length ?? 0),
    0,
  );
}

/** Splits on commas outside brackets and parentheses (`bucket[16](id),day(at)`). */
function splitList(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of text) {
    if (c === '(' || c === '[') depth++;
    if (c === ')' || c === ']') depth--;
    if (c === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** `day(placed_at),bucket[16](id),region` → `partitionBy` (a bare column is identity). */
export function partitionByOption(text: string): { column: string; transform: string }[] {
  return splitList(text).map((item) => {
    const m = /^([a-z]+(?:\[\d+\])?)\(([^()]+)\)$/.exec(item);
    if (m) return { column: m[2].trim(), transform: m[1] };
    if (/^[A-Za-z_][A-Za-z0-9_.]*$/.test(item)) return { column: item, transform: 'identity' };
    throw new UsageError(`--partition-by: "${item}" is not transform(column) or a column`);
  });
}

/** `placed_at desc,id` → `sortBy` (`asc`/`desc`, then `nulls-first`/`nulls-last`). */
export function sortByOption(text: string): { column: string; direction?: string; nulls?: string }[] {
  return splitList(text).map((item) => {
    const [column, ...rest] = item.split(/\s+/);
    const o: { column: string; direction?: string; nulls?: string } = { column };
    for (const w of rest) {
      if (w === 'asc' || w === 'desc') o.direction = w;
      else if (w === 'nulls-first' || w === 'nulls-last') o.nulls = w.slice(6);
      else throw new UsageError(`--sort-by: "${w}" is not asc, desc, nulls-first or nulls-last`);
    }
    return o;
  });
}

function one(args: string[], command: string): string {
  if (args.length !== 1) throw new UsageError(`${command} takes one table name`);
  return args[0];
}

function positiveInt(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--${name} must be a positive integer`);
  return Number(v);
}

/**
 * `moonlink import T URI`: the server reads the files (POST /tables/{name}/imports); this
 * follows its progress until it is committed or failed (or, with --no-wait, prints its id).
 */
async function importFiles(client: Client, args: string[], v: Values): Promise<number> {
  if (args.length !== 2) throw new UsageError('import takes a table and a URI (s3://bucket/prefix/, file:///folder/*.parquet)');
  const [table, uri] = args;
  if (v.op && !['insert', 'upsert'].includes(v.op)) throw new UsageError('--op must be insert or upsert');
  const started = await client.json('POST', `tables/${table}/imports`, {
    uri,
    ...(v.format ? { format: v.format } : {}),
    ...(v.op ? { op: v.op } : {}),
  });
  process.stderr.write(`import ${started.id}: ${started.files} file(s), ${(started.totalBytes / 1e6).toFixed(1)} MB\n`);
  if (v['no-wait']) {
    out(started.id);
    return 0;
  }
  const progress = new Progress(started.totalBytes, process.stderr);
  const t0 = Date.now();
  for (;;) {
    const r = await client.json('GET', `tables/${table}/imports/${started.id}`);
    progress.update(r.rows, r.bytes);
    if (r.state === 'committed' || r.state === 'failed') {
      progress.stop();
      if (r.state === 'failed') {
        process.stderr.write(`moonlink: import ${r.id} failed, nothing of it applied: ${r.error?.message}\n`);
        return 1;
      }
      const s = (Date.now() - t0) / 1000;
      out(`imported ${r.rows} rows from ${r.files} file(s) in ${s.toFixed(1)} s, committed at LSN ${r.lsn}: ${r.metadataLocation}`);
      return 0;
    }
    await new Promise((res) => setTimeout(res, 500));
  }
}

async function load(client: Client, files: string[], v: Values): Promise<number> {
  if (files.length === 0) throw new UsageError('load needs at least one file');
  if (!v.table) throw new UsageError('load needs --table');
  if (v.op && !['insert', 'upsert', 'delete'].includes(v.op)) throw new UsageError('--op must be insert, upsert or delete');
  const table = v.table;
  const batchRows = positiveInt(v['batch-rows'], 'batch-rows', 10_000);
  const skip = v['skip-rows'] === undefined ? 0 : positiveInt(v['skip-rows'], 'skip-rows', 0);
  const formats = files.map((f) => formatOf(f, v.format));
  let columns: Column[] | undefined;
  if (v.create) {
    columns = v.schema
      ? parseSchemaOption(v.schema)
      : formats[0] === 'parquet' || formats[0] === 'arrow'
        ? columnsFromArrow(await arrowSchemaOf(files[0], formats[0]))
        : undefined;
    if (!columns) throw new UsageError('--create of a CSV or NDJSON file needs --schema name:type,...');
    const key = v.key ? v.key.split(',').map((k) => k.trim()) : [];
    await client.json('POST', 'tables', {
      name: table,
      columns: columns.map((c) => ({ ...c, nullable: key.includes(c.name) ? false : c.nullable })),
      ...(key.length ? { primaryKey: key } : {}),
      ...(v['partition-by'] ? { partitionBy: partitionByOption(v['partition-by']) } : {}),
      ...(v['sort-by'] ? { sortBy: sortByOption(v['sort-by']) } : {}),
    });
    process.stderr.write(`created table ${table} (${columns.length} columns${key.length ? `, key ${key.join(',')}` : ''})\n`);
  }
  if (formats.includes('csv')) {
    const d = await client.json('GET', `tables/${table}`);
    columns = d.columns as Column[];
  }
  let totalBytes = 0;
  for (const f of files) totalBytes += (await fs.stat(f)).size;
  const progress = new Progress(totalBytes, process.stderr);
  client.o.onRetry = (status, waitMs) => progress.note(`server busy (${status}); retrying in ${Math.round(waitMs / 100) / 10} s`);
  let rows = 0;
  let sent = 0;
  let batches = 0;
  let lastLsn: unknown;
  let bytesBefore = 0;
  let replayed = 0;
  const started = Date.now();
  try {
    for (const [i, file] of files.entries()) {
      // Each batch's Idempotency-Key comes from the file, the table and the batching: a retry
      // of a batch, or a rerun of the whole command, never applies a batch twice (within the
      // service's retention window, 24 h by default).
      const st = await fs.stat(file);
      const run = createHash('sha256')
        .update(JSON.stringify([path.resolve(file), st.size, st.mtimeMs, table, v.op ?? '', batchRows, formats[i]]))
        .digest('base64url')
        .slice(0, 22);
      let batchNo = 0;
      for await (const b of fileBatches(file, formats[i], { batchRows, op: v.op, columns })) {
        const key = `moonlink-load-${run}-${batchNo++}`;
        const first = rows;
        rows += b.rows;
        if (rows <= skip) {
          progress.update(rows, bytesBefore + b.bytesRead);
          continue;
        }
        if (first < skip) throw new UsageError(`--skip-rows ${skip} is not at a batch boundary of --batch-rows ${batchRows}`);
        const q = [b.query].filter(Boolean).join('&');
        try {
          const send = () =>
            client.request('POST', `tables/${table}/rows${q ? `?${q}` : ''}`, b.body, {
              'content-type': b.contentType,
              'idempotency-key': key,
            });
          let r: Awaited<ReturnType<typeof send>> | undefined;
          for (let attempt = 0; !r; attempt++) {
            try {
              r = await send();
            } catch (e) {
              // The answer was lost: the same key makes sending again safe.
              if (!(e instanceof ServiceError) || !e.unknownOutcome || attempt >= 5) throw e;
              progress.note(`${e.message}; sending batch ${batches + 1} again (same Idempotency-Key)`);
              await new Promise((res) => setTimeout(res, 1000 * (attempt + 1)));
            }
          }
          if (r.headers.get('idempotent-replayed') === 'true') replayed++;
          lastLsn = JSON.parse(new TextDecoder().decode(r.bytes)).lsn;
        } catch (e) {
          if (e instanceof ServiceError) {
            const resume = `rows before ${first} were applied; rerun the same command (batches already applied are recognized by their Idempotency-Key and not applied again) or use --skip-rows ${first}`;
            throw new Error(`${file}: batch ${batches + 1} (rows ${first}–${rows - 1}): ${e.message}\n  ${resume}`);
          }
          throw e;
        }
        sent += b.rows;
        batches++;
        progress.update(rows, bytesBefore + b.bytesRead);
      }
      bytesBefore += (await fs.stat(file)).size;
    }
  } finally {
    progress.stop();
  }
  const secs = (Date.now() - started) / 1000;
  process.stderr.write(
    `loaded ${sent} rows in ${batches} batches from ${files.length} file(s) in ${secs.toFixed(1)} s (${Math.round(sent / Math.max(secs, 0.001))} rows/s)${skip ? `, ${skip} skipped` : ''}${replayed ? `, ${replayed} batches already applied before (not applied again)` : ''}; last LSN ${lastLsn ?? '-'}\n`,
  );
  return 0;
}

async function scan(client: Client, table: string, v: Values): Promise<number> {
  const format = v.format ?? 'ndjson';
  if (!['ndjson', 'csv', 'parquet'].includes(format)) throw new UsageError('--format of scan: ndjson, csv or parquet');
  const limit = v.limit === undefined ? Number.POSITIVE_INFINITY : positiveInt(v.limit, 'limit', 1);
  const write = v.out ? await fs.open(v.out, 'w') : undefined;
  const emit = async (text: string | Uint8Array) => {
    if (!write) process.stdout.write(text);
    else if (typeof text === 'string') await write.write(text);
    else await write.write(text);
  };
  let cursor: string | undefined;
  let n = 0;
  const batches: arrow.Table[] = [];
  let header = false;
  let skipped = 0;
  try {
    do {
      const page = Math.min(10_000, limit - n);
      const q = new URLSearchParams({ limit: String(page) });
      if (v['min-lsn']) q.set('minLsn', v['min-lsn']);
      if (v.filter && !cursor) q.set('filter', v.filter);
      if (cursor) q.set('cursor', cursor);
      if (format === 'parquet') {
        const r = await client.request('GET', `tables/${table}/rows?${q}`, undefined, {
          accept: 'application/vnd.apache.arrow.stream',
        });
        const t = arrow.tableFromIPC(r.bytes);
        batches.push(t);
        n += t.numRows;
        cursor = r.headers.get('x-moonlink-next-cursor') ?? undefined;
        continue;
      }
      const r = await client.json('GET', `tables/${table}/rows?${q}`);
      const rows = r.rows as Record<string, unknown>[];
      for (const row of rows) {
        if (format === 'ndjson') await emit(`${JSON.stringify(row)}\n`);
        else {
          if (!header) {
            await emit(`${Object.keys(row).map(csvCell).join(',')}\n`);
            header = true;
          }
          await emit(`${Object.values(row).map(csvCell).join(',')}\n`);
        }
      }
      n += rows.length;
      skipped += (r.filesSkipped as number | undefined) ?? 0;
      cursor = r.nextCursor;
    } while (cursor && n < limit);
    if (format === 'parquet') {
      const all = batches.length === 1 ? batches[0] : new arrow.Table(batches.flatMap((t) => t.batches));
      await emit(encodeParquet(arrow.tableToIPC(all, 'stream')));
    }
  } finally {
    await write?.close();
  }
  process.stderr.write(`${n} rows${skipped > 0 ? ` (${skipped} files skipped by partition)` : ''}\n`);
  return 0;
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
