/** Routes of the public API: writes (the ingest function on AWS). Each Lambda bundle holds only its own groups. */
import type { RouteSpec } from '../route-spec.ts';
import { writeRowsRoute } from '../routes/rows.ts';

export const routes: RouteSpec[] = [{ method: 'POST', path: '/tables/{name}/rows', fn: writeRowsRoute }];
