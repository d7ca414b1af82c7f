/**
 * Unique ids for object keys (data files, tail files, snapshots), injected like the clock: a
 * seeded source makes a simulated run name its objects the same way every time (stores list
 * keys in order, so names decide the order of a sweep's requests).
 */
import { randomUUID } from 'node:crypto';

export type NewId = () => string;

export const randomId: NewId = () => randomUUID();

/** UUID-shaped ids from a seed (a simulation's replays name their objects alike). */
export function seededIds(seed: number): NewId {
  let s = seed >>> 0 || 1;
  const word = (): string => {
    // xorshift32: enough to spread names; not for anything secret.
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0).toString(16).padStart(8, '0');
  };
  return () => {
    const h = word() + word() + word() + word();
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
  };
}
