/** Routes of the public API: flush (the flush function on AWS). Each Lambda bundle holds only its own groups. */
import type { RouteSpec } from '../route-spec.ts';
import { flushRoute } from '../routes/flush.ts';

export const routes: RouteSpec[] = [{ method: 'POST', path: '/tables/{name}/flush', fn: flushRoute }];
