/**
 * Renaming a table in the DynamoDB catalog. A rename moves two items (DEF and POINTER) to a new
 * partition key. DynamoDB could do that in one TransactWriteItems, but dynalite (the local AWS
 * emulation) has none, so the rename is a sequence of single-item writes, any of which a crash
 * may interrupt, made safe by recording the intent first.
 *
 * 0. {@link sealRename}: the old DEF item gets `renamingTo` and `renameSealedAt`; from then on
 *    the old name is not found (getTable and listTables skip it), while the writer goes on
 *    committing under it (appends made with a cached definition drain into it). A seal is
 *    undone by {@link unsealRename}, or by {@link finishRenames} once it is older than
 *    {@link SEAL_EXPIRY_MS} (the writer that made it died).
 * 1. the old DEF item gets `renamedDef` and `renameLsn` too: the rename will be completed;
 * 2. the new DEF item is written with `renamedFrom` (condition: absent, or this rename's own);
 * 3. the new POINTER item is copied from the old one, its LSNs raised (a stale pointer of a
 *    dropped table of the new name is replaced; this rename's own is kept);
 * 4. the old name's items are deleted (pointer first, definition last);
 * 5. `renamedFrom` is removed.
 * Each step may run again; {@link finishRenames} runs them again from the recorded intent.
 */
import {
  type DynamoDBClient,
  PutItemCommand,
  type PutItemCommandInput,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { type Lsn, lsnFromText, lsnToText, maxLsn } from '../lsn.ts';
import type { TableDefinition } from '../schema/table-schema.ts';
import { ConflictError, FencedError, TableExistsError } from './catalog.ts';
import { DEF, type Item, isConditionFailed, key, n, num, POINTER, s, str } from './dynamodb-item.ts';

/** What the rename needs of the catalog. */
export interface RenameContext {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  send<T>(fn: () => Promise<T>): Promise<T>;
  getItem(table: string, sk: string): Promise<Item | undefined>;
  /** Deletes a table's items: pointer first, leases, definition last. */
  deleteTableItems(table: string): Promise<void>;
}

/** The rename intent kept on the old DEF item, if it has one. */
export function renameIntentOf(item: Item): { to: string; def: TableDefinition; lsn: Lsn } | undefined {
  const to = str(item, 'renamingTo');
  const def = str(item, 'renamedDef');
  if (to === undefined || def === undefined) return undefined;
  return { to, def: JSON.parse(def) as TableDefinition, lsn: lsnFromText(str(item, 'renameLsn') ?? '0') };
}

export async function renameTable(
  c: RenameContext,
  from: string,
  def: TableDefinition,
  epoch: number,
  lsn: Lsn,
): Promise<void> {
  const [oldDef, oldPointer] = await Promise.all([c.getItem(from, DEF), c.getItem(from, POINTER)]);
  const pending = oldDef ? renameIntentOf(oldDef) : undefined;
  if (
    !oldDef ||
    !oldPointer ||
    (num(oldPointer, 'version') ?? 0) === 0 ||
    (pending && pending.to !== def.name)
  )
    throw new ConflictError(`table "${from}" does not exist`);
  const current = num(oldPointer, 'epoch') ?? 0;
  if (current !== epoch) throw new FencedError(from, epoch, current);
  const taken = await c.getItem(def.name, DEF);
  if (taken && str(taken, 'renamedFrom') !== from) throw new TableExistsError(def.name);
  try {
    await update(c, {
      Key: key(from, DEF),
      UpdateExpression: 'SET renamingTo = :to, renamedDef = :def, renameLsn = :lsn REMOVE renameSealedAt',
      ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(renamingTo) OR renamingTo = :to)',
      ExpressionAttributeValues: {
        ':to': s(def.name),
        ':def': s(JSON.stringify(def)),
        ':lsn': s(lsnToText(lsn)),
      },
    });
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
    throw new ConflictError(`table "${from}" is being renamed to another name`);
  }
  await completeRename(c, from, def, lsn);
}

/** A seal older than this is from a writer that died during the rename: it is undone. */
export const SEAL_EXPIRY_MS = 2 * 60_000;

export async function sealRename(c: RenameContext, from: string, to: string): Promise<void> {
  try {
    await update(c, {
      Key: key(from, DEF),
      UpdateExpression: 'SET renamingTo = :to, renameSealedAt = :at',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(renamingTo)',
      ExpressionAttributeValues: { ':to': s(to), ':at': n(Date.now()) },
    });
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
    throw new ConflictError(`table "${from}" does not exist or is being renamed`);
  }
}

export async function unsealRename(c: RenameContext, from: string): Promise<void> {
  await updateIfPresent(c, {
    Key: key(from, DEF),
    UpdateExpression: 'REMOVE renamingTo, renameSealedAt',
    ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(renamedDef)',
  });
}

/** Steps 2 to 5 (see the module comment); safe to run again. */
async function completeRename(c: RenameContext, from: string, def: TableDefinition, lsn: Lsn): Promise<void> {
  try {
    await put(c, {
      Item: {
        ...key(def.name, DEF),
        name: s(def.name),
        tableUuid: s(def.tableUuid),
        def: s(JSON.stringify(def)),
        createdAt: s(def.createdAt),
        renamedFrom: s(from),
      },
      ConditionExpression: 'attribute_not_exists(pk) OR renamedFrom = :from',
      ExpressionAttributeValues: { ':from': s(from) },
    });
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
    // The name was taken between the check and the intent: the rename is undone.
    await updateIfPresent(c, {
      Key: key(from, DEF),
      UpdateExpression: 'REMOVE renamingTo, renamedDef, renameLsn',
      ConditionExpression: 'attribute_exists(pk)',
    });
    throw new TableExistsError(def.name);
  }
  const oldPointer = await c.getItem(from, POINTER);
  if (oldPointer) {
    const raise = (v: string | undefined): string =>
      lsnToText(v === undefined ? lsn : maxLsn(lsnFromText(v), lsn));
    try {
      await put(c, {
        Item: {
          ...oldPointer,
          ...key(def.name, POINTER),
          table: s(def.name),
          version: n((num(oldPointer, 'version') ?? 0) + 1),
          lsn: s(raise(str(oldPointer, 'lsn'))),
          committedLsn: s(raise(str(oldPointer, 'committedLsn'))),
          updatedAt: s(new Date().toISOString()),
        },
        ConditionExpression: 'attribute_not_exists(pk) OR tableUuid <> :uuid',
        ExpressionAttributeValues: { ':uuid': s(def.tableUuid) },
      });
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
    }
  }
  await c.deleteTableItems(from);
  await clearRenamedFrom(c, def.name);
}

/**
 * Completes every rename a crash interrupted, given the DEF items (with `pk`, `renamingTo`,
 * `renamedDef`, `renameLsn` and `renamedFrom`).
 */
export async function finishRenames(c: RenameContext, defItems: Item[], now = Date.now()): Promise<void> {
  const resumed = new Set<string>();
  for (const item of defItems) {
    const intent = renameIntentOf(item);
    const from = (str(item, 'pk') ?? '').replace(/^TABLE#/, '');
    const sealedAt = num(item, 'renameSealedAt');
    if (!intent && sealedAt !== undefined && now - sealedAt > SEAL_EXPIRY_MS) await unsealRename(c, from);
    if (!intent) continue;
    await completeRename(c, from, intent.def, intent.lsn).catch((e) => {
      if (!(e instanceof TableExistsError)) throw e;
    });
    resumed.add(intent.to);
  }
  for (const item of defItems) {
    const name = (str(item, 'pk') ?? '').replace(/^TABLE#/, '');
    if (str(item, 'renamedFrom') === undefined || resumed.has(name)) continue;
    await clearRenamedFrom(c, name);
  }
}

async function put(c: RenameContext, input: Omit<PutItemCommandInput, 'TableName'>): Promise<void> {
  await c.send(() => c.client.send(new PutItemCommand({ TableName: c.tableName, ...input })));
}

async function update(c: RenameContext, input: Omit<UpdateItemCommandInput, 'TableName'>): Promise<void> {
  await c.send(() => c.client.send(new UpdateItemCommand({ TableName: c.tableName, ...input })));
}

/** An update whose condition failing means there is nothing left to do. */
async function updateIfPresent(
  c: RenameContext,
  input: Omit<UpdateItemCommandInput, 'TableName'>,
): Promise<void> {
  await update(c, input).catch((e) => (isConditionFailed(e) ? undefined : Promise.reject(e)));
}

/** Step 5: the new definition no longer says where it came from. */
function clearRenamedFrom(c: RenameContext, name: string): Promise<void> {
  return updateIfPresent(c, {
    Key: key(name, DEF),
    UpdateExpression: 'REMOVE renamedFrom',
    ConditionExpression: 'attribute_exists(pk)',
  });
}
