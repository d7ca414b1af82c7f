/**
 * Iceberg table properties that clients may change (through the REST catalog), and the ones
 * this service sets itself and keeps.
 */
import { z } from 'zod';

/** Table properties set and removed by one request (removals first, then the settings). */
export interface PropertyChange {
  set: Record<string, string>;
  remove: string[];
}

/** Properties the writer sets and relies on: clients cannot change or remove them. */
const RESERVED = new Set([
  'write.format.default',
  'write.parquet.compression-codec',
  'write.delete.mode',
  'write.update.mode',
  'write.merge.mode',
  'write.metadata.previous-versions-max',
  'schema.name-mapping.default',
  'format-version',
]);

export function isReservedProperty(key: string): boolean {
  return RESERVED.has(key) || key.startsWith('moonlink.');
}

export function applyPropertyChanges(
  props: Record<string, string>,
  changes: PropertyChange[],
): Record<string, string> {
  const out = { ...props };
  for (const c of changes) {
    for (const k of c.remove) delete out[k];
    Object.assign(out, c.set);
  }
  return out;
}

const MAX_KEY = 256;
const MAX_VALUE = 16 * 1024;

const changeSchema = z.strictObject({
  set: z.record(z.string().min(1).max(MAX_KEY), z.string().max(MAX_VALUE)),
  remove: z.array(z.string().min(1).max(MAX_KEY)).max(1000),
});

/** Validates a change (from a request or the writer's internal API). Throws with a reason. */
export function parsePropertyChange(value: unknown): PropertyChange {
  const r = changeSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new PropertyChangeError(`${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  const keys = [...Object.keys(r.data.set), ...r.data.remove];
  const reserved = keys.find(isReservedProperty);
  if (reserved !== undefined)
    throw new PropertyChangeError(`property "${reserved}" is set by the service and cannot be changed`);
  const both = r.data.remove.find((k) => Object.hasOwn(r.data.set, k));
  if (both !== undefined) throw new PropertyChangeError(`property "${both}" is both set and removed`);
  if (Object.keys(r.data.set).length + r.data.remove.length > 1000)
    throw new PropertyChangeError('at most 1000 properties per change');
  return { set: { ...r.data.set }, remove: [...r.data.remove] };
}

import { PropertyChangeError } from '../schema/errors.ts';

export { PropertyChangeError } from '../schema/errors.ts';
