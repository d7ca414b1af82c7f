/** Item shapes and attribute helpers of the DynamoDB catalog (key schema: pk S HASH, sk S RANGE). */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { TABLE_NAME_PATTERN } from '../schema/table-name.ts';
import { errorName } from '../util/aws-retry.ts';

export type Item = Record<string, AttributeValue>;

/** Sort keys: a table's definition, its pointer, its leases; a namespace. */
export const DEF = 'DEF';
export const NS = 'NS';
export const POINTER = 'POINTER';
export const LEASE = 'LEASE#';

export function pk(table: string): string {
  if (!TABLE_NAME_PATTERN.test(table)) throw new Error(`invalid table name ${JSON.stringify(table)}`);
  return `TABLE#${table}`;
}

export function key(table: string, sk: string): Item {
  return { pk: { S: pk(table) }, sk: { S: sk } };
}

export const s = (v: string): AttributeValue => ({ S: v });
export const n = (v: number): AttributeValue => ({ N: String(v) });
export const str = (item: Item, name: string): string | undefined => item[name]?.S;
export const num = (item: Item, name: string): number | undefined =>
  item[name]?.N === undefined ? undefined : Number(item[name].N);

export function isConditionFailed(e: unknown): boolean {
  return errorName(e) === 'ConditionalCheckFailedException';
}
