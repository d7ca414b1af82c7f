/** Table locations (lib/engine/table-paths.ts): derived, stored, and chosen so no two tables overlap. */
import { describe, expect, it } from 'vitest';
import {
  derivedLocation,
  ephemeralRootOf,
  locationForNew,
  locationOf,
  locationsOverlap,
  tableRootOf,
} from '../lib/engine/table-paths.ts';

const uuid = '0123abcd-4567-89ef-0123-456789abcdef';

describe('table locations', () => {
  it('derives tables/<name> and tables/<ns>/<name>, and prefers a stored location', () => {
    expect(derivedLocation('orders')).toBe('orders');
    expect(derivedLocation('analytics.events')).toBe('analytics/events');
    expect(tableRootOf({ name: 'analytics.events' })).toBe('tables/analytics/events');
    expect(ephemeralRootOf({ name: 'orders' })).toBe('tmp/tables/orders');
    expect(locationOf({ name: 'sales.orders', location: 'orders' })).toBe('orders');
    expect(tableRootOf({ name: 'sales.orders', location: 'orders' })).toBe('tables/orders');
    expect(() => derivedLocation('1bad')).toThrow(/invalid table name/);
  });

  it('overlap is equality or one under the other, on path boundaries', () => {
    expect(locationsOverlap('a', 'a')).toBe(true);
    expect(locationsOverlap('a', 'a/b')).toBe(true);
    expect(locationsOverlap('a/b', 'a')).toBe(true);
    expect(locationsOverlap('a', 'ab')).toBe(false);
    expect(locationsOverlap('a/b', 'a/c')).toBe(false);
  });

  it('a new table gets its derived place unless a renamed table holds (or contains) it', () => {
    expect(locationForNew('orders', uuid, [{ name: 'other' }])).toBe('orders');
    // "orders" was renamed to sales.orders and kept tables/orders/.
    const renamed = [{ name: 'sales.orders', location: 'orders' }];
    const fresh = locationForNew('orders', uuid, renamed);
    expect(fresh).toBe('orders-0123abcd4567');
    // A default-namespace table "x" renamed away still holds tables/x/: tables of a later
    // namespace "x" may not go under it (a purge of one would delete the other).
    const inside = locationForNew('x.t', uuid, [{ name: 'y', location: 'x' }]);
    expect(inside).toBe('x__t-0123abcd4567');
    expect(locationsOverlap(inside, 'x')).toBe(false);
    // No name derives a place with "-": nothing can later land at or under a chosen one.
    expect(/^[A-Za-z_][A-Za-z0-9_]*(\/[A-Za-z_][A-Za-z0-9_]*)?$/.test(fresh)).toBe(false);
  });
});
